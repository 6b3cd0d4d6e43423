"""The poller: each tick looks at the folders the active index says are due, and now and then
sweeps the whole watch root instead.

It is the safety net that catches whatever a webhook missed, takes back expired leases, and is
enough on its own. A fast tick costs one LIST of the index plus each due folder's own LIST
(`handlers/active.py`), so it grows with the jobs in flight, not with the bucket's history.
Every `sweep_interval` seconds one tick sweeps instead (`handlers/sweep.py`): it streams the
whole listing folder by folder, acts on every job the index missed and repairs the index.
Without a webhook nothing else feeds the index, so by default every tick sweeps then
(`Settings.sweep_interval`). Pollers agree on who sweeps through the sweep marker: the one whose
conditional write moves it forward sweeps, the others tick fast.

A job that raises is skipped (one log line) by reconcile; only a failed LIST fails the whole
tick, and the next tick retries.
"""

from __future__ import annotations

import logging
import threading
import uuid

from handlers.active import SWEPT_KEY, Index, forget, look, read_index, reschedule
from handlers.errors import PreconditionFailed, first_line, is_permanent
from handlers.reconcile import Dispatcher, TickReport
from handlers.runtime import Runtime
from handlers.sweep import sweep

log = logging.getLogger(__name__)


def tick(rt: Runtime, dispatcher: Dispatcher, full: bool = False) -> TickReport:
    """One tick: a sweep when it is due (or `full`: `watch --once` looks at everything), else a
    fast tick over the index."""
    if rt.settings.sweep_interval == 0:  # every tick sweeps: nobody reads the index
        report, kind = sweep(rt, dispatcher, None), "tick"
    else:
        index = read_index(rt.storage)
        if full or _sweep_is_ours(rt, index):
            report, kind = sweep(rt, dispatcher, index), "sweep"
        else:
            report, kind = fast_tick(rt, dispatcher, index), "tick"
    if report.claimed or report.taken_back or report.failed or report.errors:
        log.info(
            "%s: %d jobs, claimed %d, took back %d, failed %d, skipped %d",
            kind,
            report.jobs,
            len(report.claimed),
            len(report.taken_back),
            len(report.failed),
            len(report.errors),
        )
    return report


def fast_tick(rt: Runtime, dispatcher: Dispatcher, index: Index) -> TickReport:
    """Look at each folder whose entry is due; the others only set when to wake next."""
    report = TickReport(requests=index.pages)
    now = index.server_time
    for folder, listed in index.entries.items():
        due = index.due(folder)
        if due > now:
            report.wake_in((due - now).total_seconds())
            continue
        try:
            found = look(rt, folder, dispatcher)
        except Exception as err:  # one folder's trouble never stops the others
            log.error("tick: folder %r skipped: %s", folder[:200] or "/", first_line(err))
            report.errors.append(folder)
            if is_permanent(err):  # a name no listing can take: an entry no dropreel wrote
                report.requests += forget(rt.storage, listed)
            continue
        report.add(found.report)
        report.requests += reschedule(rt.storage, folder, found.next_look, listed)
    return report


def _sweep_is_ours(rt: Runtime, index: Index) -> bool:
    """True when the last sweep is older than the interval and this poller moved the sweep
    marker first."""
    interval = rt.settings.sweep_interval
    swept = index.swept
    if swept is not None and (index.server_time - swept.last_modified).total_seconds() < interval:
        return False
    body = uuid.uuid4().hex.encode()  # unique, so an S3 ETag (an MD5) changes on every write
    try:
        if swept is None:
            rt.storage.put_if_absent(SWEPT_KEY, body, "text/plain")
        else:
            rt.storage.put_if_match(SWEPT_KEY, body, swept.etag, "text/plain")
    except PreconditionFailed:
        return False  # another poller is sweeping
    return True


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
