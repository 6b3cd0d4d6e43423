"""From object events to claimed jobs: the part of the webhook that is not HTTP.

For each event: keep it only if it is a creation inside the watch root and names an input (not
dropreel's own MP4 or metadata); list that job's folder once per request (its own files with a
delimiter, plus its `.dropreel/` metadata: never the subtree, so an event at the top of a bucket
costs the same as one deep inside it); reconcile the listing,
which claims ready jobs and hands them to a non-blocking dispatcher. A job still inside its
settle window gets one re-check timed for when the window ends (the poller stays the safety net
for anything missed). Duplicate and replayed events are harmless: the listing then shows the job
claimed or done, and a claim is a conditional write that only one caller wins. A folder left
with work in flight gets an entry in the active index (`handlers/active.py`), so a poller
follows the job should this process stop.

Each folder is reconciled alone (and within it, each job: see `handlers.reconcile`): a folder
whose listing fails is logged in one line, the others go on, and the request then answers with
that error so the sender delivers it again.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from urllib.parse import urlparse

from handlers import layout
from handlers.active import look, note_active
from handlers.control import control_type
from handlers.errors import first_line
from handlers.reconcile import Dispatcher, TickReport
from handlers.runtime import Runtime
from triggers.events.model import ObjectEvent

log = logging.getLogger(__name__)

RECHECK_MARGIN_SECONDS = 0.1
MAX_PENDING_RECHECKS = 10_000
RECHECK_WORKERS = 16  # re-checks in flight at once (each is a folder's LISTs and a claim)


@dataclass
class IntakeReport:
    """What one request's events led to (returned to the sender: counts only)."""

    events: int = 0
    ignored: int = 0
    folders: int = 0
    claimed: int = 0
    settling: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def watch_location(url: str) -> tuple[str | None, str]:
    """(bucket, key prefix) of an s3:// watch root; (None, '') for a local folder."""
    parsed = urlparse(url)
    if parsed.scheme != "s3":
        return None, ""
    prefix = parsed.path.strip("/")
    return parsed.netloc, (prefix + "/" if prefix else "")


def _safe_key(key: str) -> bool:
    """False for keys no backend would accept ('..', empty segments, NUL, backslash, too long)."""
    try:
        if len(key.encode("utf-8")) > layout.MAX_KEY_BYTES:
            return False
    except UnicodeEncodeError:  # lone surrogates: not a key any bucket can hold
        return False
    return layout.is_safe_key(key)


class Intake:
    """Turns object events into reconcile passes over the folders they touch."""

    def __init__(self, rt: Runtime, dispatcher: Dispatcher) -> None:
        self.rt = rt
        self.dispatcher = dispatcher
        self.bucket, self.prefix = watch_location(rt.storage.url)
        self.rechecks = Rechecks(self._recheck)

    def folder_of(self, event: ObjectEvent) -> str | None:
        """The job folder (relative to the watch root) an event concerns, or None to ignore it."""
        if not event.created:
            return None
        if self.bucket is not None and event.bucket != self.bucket:
            return None
        if not event.key.startswith(self.prefix):
            return None
        relative = event.key[len(self.prefix) :]
        if not _safe_key(relative) or layout.is_reserved(relative):
            return None
        folder, name = layout.split_key(relative)
        if layout.input_type(name) is None and control_type(name) is None:  # metadata, others
            return None
        if layout.may_be_output(name):  # every output makes one; the poller sees an MP4 source
            return None
        return folder

    def accept(self, events: Iterable[ObjectEvent]) -> IntakeReport:
        report = IntakeReport()
        folders: dict[str, None] = {}
        for event in events:
            report.events += 1
            folder = self.folder_of(event)
            if folder is None:
                report.ignored += 1
            else:
                folders.setdefault(folder)
        report.folders = len(folders)
        failure: Exception | None = None
        for folder in folders:
            try:
                tick = self.reconcile_folder(folder)
            except Exception as err:  # one folder's trouble never stops the others
                log.error("webhook: folder %r skipped: %s", folder[:200] or "/", first_line(err))
                failure = failure or err
                continue
            report.claimed += len(tick.claimed) + len(tick.taken_back)
            report.settling += tick.states.get("settling", 0)
        if failure is not None:
            raise failure  # the sender retries (503 for storage trouble); done folders no-op
        return report

    def reconcile_folder(self, folder: str) -> TickReport:
        found = look(self.rt, folder, self.dispatcher)
        report = found.report
        report.requests += note_active(self.rt, found)
        if report.next_ready_in is not None:
            self.rechecks.schedule(folder, report.next_ready_in + RECHECK_MARGIN_SECONDS)
        if report.claimed or report.taken_back:
            log.info(
                "webhook: folder %r claimed %s", folder or "/", report.claimed + report.taken_back
            )
        return report

    def _recheck(self, folder: str) -> None:
        try:
            self.reconcile_folder(folder)
        except Exception as err:  # keep the timer alive; the poller is the safety net
            log.warning("re-check of folder %r failed: %s", folder, type(err).__name__)

    def close(self) -> None:
        self.rechecks.close()


class Rechecks:
    """One timer thread, at most one pending re-check per folder (the earliest one wins). Due
    re-checks run on a small pool, so a burst of jobs that settle together is claimed together
    rather than one LIST after another."""

    def __init__(
        self,
        run: Callable[[str], None],
        clock: Callable[[], float] = time.monotonic,
        max_pending: int = MAX_PENDING_RECHECKS,
        workers: int = RECHECK_WORKERS,
    ) -> None:
        self.run = run
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="recheck-run")
        self.clock = clock
        self.max_pending = max_pending
        self._heap: list[tuple[float, int, str]] = []
        self._due: dict[str, float] = {}
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    def schedule(self, folder: str, delay: float) -> bool:
        due = self.clock() + max(0.0, delay)
        with self._cond:
            if self._closed:
                return False
            current = self._due.get(folder)
            if current is not None and current <= due:
                return False
            if current is None and len(self._due) >= self.max_pending:
                log.warning("too many pending re-checks; the poller will pick up %r", folder)
                return False
            self._due[folder] = due
            heapq.heappush(self._heap, (due, next(self._seq), folder))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="recheck", daemon=True)
                self._thread.start()
            self._cond.notify()
        return True

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    if self._heap:
                        wait = self._heap[0][0] - self.clock()
                        if wait <= 0:
                            break
                        self._cond.wait(wait)
                    else:
                        self._cond.wait()
                if self._closed:
                    return
                due, _, folder = heapq.heappop(self._heap)
                if self._due.get(folder) != due:
                    continue  # superseded by an earlier re-check of the same folder
                del self._due[folder]
            self._pool.submit(self.run, folder)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
