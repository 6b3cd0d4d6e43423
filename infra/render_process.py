"""Renders in a process of their own, so the webhook that claims them keeps its latency.

`dropreel serve` answers bucket events in well under a second; a render in the same process
takes the GIL for seconds at a time (decoding, encoding, Python-side model code), and the
webhook's p99 grew to the render's time slices. So the webhook only claims: `RenderProcess`
hands each claimed job to a child process (spawned, not forked, as the parent runs threads),
which renders it on its own worker pool with its own storage client and notifier.

The claim moves with the job: the child rebuilds the lease from its key and ETag and starts its
heartbeat the moment the job arrives (milliseconds after the claim), so a queued claim never
expires (`PoolDispatcher`). If the child dies, its leases expire and a poller takes the jobs
back, like any crashed worker's: the webhook noted each folder in the active index.
"""

from __future__ import annotations

import logging
import multiprocessing
from dataclasses import dataclass

from config.settings import Settings
from handlers.claims import Lease
from handlers.jobs import Job

log = logging.getLogger(__name__)

STOP_SECONDS = 600  # how long closing waits for the renders in flight


@dataclass(frozen=True)
class Handover:
    """A claimed job as it crosses to the render process (a lease without its storage)."""

    job: Job
    key: str
    etag: str
    attempt: int
    version: str
    worker: str


class RenderProcess:
    """A dispatcher whose renders run in a child process with `workers` render threads."""

    def __init__(self, settings: Settings, workers: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.queue = context.Queue()
        self.process = context.Process(
            target=render_jobs, args=(settings, workers, self.queue), name="dropreel-render"
        )
        self.process.start()

    def dispatch(self, job: Job, lease: Lease) -> None:
        if not self.process.is_alive():  # leave the claim to expire; a poller takes it back
            raise RuntimeError(
                f"the render process exited ({self.process.exitcode}); restart `dropreel serve`"
            )
        self.queue.put(
            Handover(job, lease.key, lease.etag, lease.attempt, lease.version, lease.worker)
        )

    def close(self) -> None:
        """Finish the renders in flight, then stop the process."""
        self.queue.put(None)
        self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            log.warning("render process still busy after %ds; stopping it", STOP_SECONDS)
            self.process.terminate()


def render_jobs(settings: Settings, workers: int, queue) -> None:
    """The render process: take handovers until told to stop, each on the worker pool."""
    from infra.local_dispatch import PoolDispatcher
    from infra.wiring import build_runtime

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    runtime = build_runtime(settings)
    pool = PoolDispatcher(runtime, workers)
    try:
        while (handover := queue.get()) is not None:
            lease = Lease(
                runtime.storage,
                handover.key,
                handover.etag,
                handover.attempt,
                handover.version,
                worker=handover.worker,
            )
            pool.dispatch(handover.job, lease)
    finally:
        pool.close()
