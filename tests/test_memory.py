"""A long-running `watch` keeps its memory flat: nothing in it grows with the jobs it has done.

The real watcher (`triggers.poller.watch`: tick, claim, local worker pool, preview engine, MP4
upload, notification) runs on a local folder while jobs are dropped in batches. The resident
memory after the second thousand jobs may be at most 10 % above what it was after the first.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from handlers.notify import JobEvent
from handlers.runtime import Runtime
from handlers.status import JobState
from infra.local_dispatch import PoolDispatcher
from tests.helpers import prompt
from triggers.poller import watch

JOBS_PER_ROUND = 1000
BATCH = 250
# the smallest job: a 64x64 prompt card of one frame
PROMPT = prompt("a dot", duration_seconds=1, fps=1, width=64, height=64)


class Counter:
    """Counts notifications and keeps nothing else (what a long-lived notifier must do)."""

    def __init__(self) -> None:
        self.done = self.failed = 0
        self.changed = threading.Condition()

    def notify(self, event: JobEvent) -> None:
        with self.changed:
            if event.state is JobState.DONE:
                self.done += 1
            else:
                self.failed += 1
            self.changed.notify_all()

    def wait_for(self, done: int, timeout: float) -> None:
        with self.changed:
            finished = self.changed.wait_for(
                lambda: self.done >= done or self.failed, timeout=timeout
            )
        assert finished and not self.failed, (self.done, self.failed)


def resident_bytes() -> int:
    """This process's resident memory now (Linux /proc; no extra package needed)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.slow
def test_watch_memory_stays_flat_over_2000_jobs(local_storage, make_settings):
    counter = Counter()
    settings = make_settings(local_storage, poll_seconds=0.5, lease_seconds=60)
    rt = Runtime(local_storage, settings, counter)
    dispatcher = PoolDispatcher(rt, workers=1)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(rt, dispatcher, settings.poll_seconds, stop))
    watcher.start()
    rss: list[int] = []
    started = time.monotonic()
    try:
        dropped = 0
        for _ in range(2):
            for _ in range(JOBS_PER_ROUND // BATCH):
                for _ in range(BATCH):
                    batch = dropped // BATCH
                    local_storage.put(f"b{batch:02d}/clip{dropped:04d}.prompt.json", PROMPT)
                    dropped += 1
                counter.wait_for(dropped, timeout=120)
            rss.append(resident_bytes())
    finally:
        stop.set()
        watcher.join(timeout=30)
        dispatcher.close()
    print(f"{dropped} jobs in {time.monotonic() - started:.0f}s; RSS MB {[r >> 20 for r in rss]}")

    assert counter.done == 2 * JOBS_PER_ROUND
    first, second = rss
    assert second < first * 1.10, f"RSS grew from {first >> 20} MB to {second >> 20} MB"
