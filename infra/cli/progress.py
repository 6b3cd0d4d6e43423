"""Progress bars for renders in a terminal (one tqdm bar per job, frames done / total)."""

from __future__ import annotations

import sys
import threading

from tqdm import tqdm

from handlers.jobs import Job


class FrameBars:
    """`Runtime.on_frame` observer that draws a bar per job on stderr."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self._bars: dict[str, tqdm] = {}
        self._lock = threading.Lock()

    def __call__(self, job: Job, done: int, total: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            bar = self._bars.get(job.name)
            if bar is None:
                bar = self._bars[job.name] = tqdm(
                    total=total, desc=job.name[-40:], unit="frame", leave=True, file=sys.stderr
                )
            bar.update(done - bar.n)
            if done >= total:
                bar.close()
                del self._bars[job.name]
