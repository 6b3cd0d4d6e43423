"""The local segment pool: a long talking head's segments on this machine's workers.

One pool per process, shared by every job the process renders, so `parallel_gpus` caps the
segments rendering at once across all jobs (`parallel_gpus_per_job` caps one job's share, in
handlers/segments.py). A pool thread renders one segment with the process's engine loader;
a crash in it reaches the job's coordinator through the Future, which hands the segment out
once more.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from gpu.engine import Progress
from handlers.runtime import Runtime
from handlers.segments import SegmentResult, SegmentTask, render_segment


class LocalSegments:
    """Renders segments on a thread pool of `workers` threads (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, rt: Runtime, task: SegmentTask, progress: Progress) -> Future[SegmentResult]:
        with self._lock:
            if self._pool is None:  # threads only for a process that renders a long job
                self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="segment")
        return self._pool.submit(render_segment, rt, task, progress)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
