"""Settle re-checks that fall due together run together: a burst of jobs that settle at the
same moment is claimed in about one re-check's time, not one after another."""

from __future__ import annotations

import threading
import time

from triggers.intake import Rechecks


def test_a_burst_of_due_rechecks_runs_concurrently():
    done: list[str] = []
    lock = threading.Lock()

    def slow_recheck(folder: str) -> None:  # one folder's LISTs and claim, say 0.3 s
        time.sleep(0.3)
        with lock:
            done.append(folder)

    rechecks = Rechecks(slow_recheck)
    try:
        started = time.monotonic()
        for i in range(32):
            assert rechecks.schedule(f"burst/{i}/", 0.05)
        while len(done) < 32 and time.monotonic() - started < 10:
            time.sleep(0.02)
        elapsed = time.monotonic() - started
    finally:
        rechecks.close()
    assert sorted(done) == sorted(f"burst/{i}/" for i in range(32))
    assert elapsed < 3.0, elapsed  # one after another: 9.6 s; 16 at a time: about 0.65 s
