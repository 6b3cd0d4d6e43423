"""Local dispatchers: render a claimed job in this process, inline or on a worker pool.

They keep nothing about finished jobs (a `watch` or `serve` may run for months); a caller that
wants each outcome passes `on_result`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from handlers.claims import Lease, LeaseKeeper
from handlers.jobs import Job
from handlers.lifecycle import RunOutcome, run_job
from handlers.runtime import Runtime

log = logging.getLogger(__name__)

ResultObserver = Callable[[Job, RunOutcome], None]


class InlineDispatcher:
    """Runs each job before returning: simplest, and what `watch --once` uses with one worker."""

    def __init__(self, rt: Runtime, on_result: ResultObserver | None = None) -> None:
        self.rt = rt
        self.on_result = on_result

    def dispatch(self, job: Job, lease: Lease, keeper: LeaseKeeper | None = None) -> None:
        outcome = run_job(self.rt, job, lease, keeper=keeper)
        if self.on_result is not None:
            self.on_result(job, outcome)

    def wait(self) -> None:
        """Nothing to wait for: jobs ran inside dispatch()."""


class PoolDispatcher:
    """Runs jobs on a thread pool so the trigger (tick or webhook request) returns at once.

    A job may wait in the pool's queue for longer than a lease lives, so its heartbeat starts
    here, at dispatch, and the run takes it over: a queued claim never expires.
    """

    def __init__(self, rt: Runtime, workers: int, on_result: ResultObserver | None = None) -> None:
        self.inline = InlineDispatcher(rt, on_result)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self.futures: set[Future] = set()  # in flight only: a long-running serve stays small
        self._lock = threading.Lock()

    def dispatch(self, job: Job, lease: Lease) -> None:
        keeper = LeaseKeeper(lease, self.inline.rt.settings.heartbeat_interval).start()

        def work() -> None:
            try:
                self.inline.dispatch(job, lease, keeper)
            except Exception:
                log.exception("render of %s crashed", job.name)
            finally:
                keeper.stop()

        try:
            future = self.pool.submit(work)
        except BaseException:
            keeper.stop()  # never queued: let the lease expire and the next tick take it back
            raise
        with self._lock:
            self.futures.add(future)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future) -> None:
        with self._lock:
            self.futures.discard(future)

    def wait(self) -> None:
        """Block until every job dispatched so far has finished."""
        while True:
            with self._lock:
                pending = list(self.futures)
            if not pending:
                return
            for future in pending:
                future.result()

    def close(self) -> None:
        self.pool.shutdown(wait=True)
