"""The poller: one paginated LIST of the watch root per tick, then reconcile.

It is the safety net that catches whatever a webhook missed, takes back expired leases, and is
enough on its own. A tick costs the LIST pages plus one request per job it acts on; finished
jobs cost nothing more. A job that raises is skipped (one log line) by reconcile; only a failed
LIST fails the whole tick, and the next tick retries.
"""

from __future__ import annotations

import logging
import threading

from handlers.reconcile import Dispatcher, TickReport, reconcile
from handlers.runtime import Runtime

log = logging.getLogger(__name__)


def tick(rt: Runtime, dispatcher: Dispatcher) -> TickReport:
    listing = rt.storage.list()
    report = reconcile(rt, listing, dispatcher)
    if report.claimed or report.taken_back or report.failed or report.errors:
        log.info(
            "tick: %d jobs, claimed %d, took back %d, failed %d, skipped %d",
            report.jobs,
            len(report.claimed),
            len(report.taken_back),
            len(report.failed),
            len(report.errors),
        )
    return report


def watch(
    rt: Runtime, dispatcher: Dispatcher, interval: float, stop: threading.Event | None = None
) -> None:
    """Tick every `interval` seconds (sooner when a settling job becomes ready) until `stop`."""
    stop = stop or threading.Event()
    while not stop.is_set():
        try:
            report = tick(rt, dispatcher)
            wait = interval
            if report.next_ready_in is not None:
                wait = max(0.2, min(interval, report.next_ready_in + 0.1))
        except Exception as err:  # a bad tick must not kill the watcher; the next one retries
            log.error("tick failed, retrying in %.0fs: %s", interval, err)
            wait = interval
        stop.wait(wait)
