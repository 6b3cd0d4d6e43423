"""The active index: which folders a poller tick must look at, and when.

A poller that lists the whole watch root every tick pays for every job ever finished. Instead,
each folder with work in flight has a small entry under `.dropreel-index/active/` whose key
names the folder and the moment it next needs a look (server clock, whole seconds):

    .dropreel-index/active/<folder, percent-encoded>@<due, epoch seconds>
    .dropreel-index/swept        LastModified: when the last sweep started

A fast tick lists the index (one request per thousand active folders) and lists only the
folders that are due, with `Storage.list_folder`. After looking, it writes the folder's next
due moment (the end of a settle window, a lease's expiry) or, once nothing in it needs a
poller, deletes its entry: a running job costs one look per lease, a finished one nothing.
Entries are written by whoever sees work in flight: the webhook when it reconciles a folder,
the fast tick after a look, and the sweep (`handlers/sweep.py`), which lists everything now and
then and puts back whatever the index lost.

The index is only a schedule, never a decision: every claim, take-back and outcome is decided
from the folder's own listing by conditional writes, exactly as before. An entry that is lost,
stale, duplicated or garbage can only make a folder be looked at later (until the next sweep)
or sooner than needed, never make a job run twice or be announced twice.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, unquote

from handlers import layout
from handlers.errors import StorageError, first_line
from handlers.jobs import Job, Phase
from handlers.layout import Marker
from handlers.reconcile import Dispatcher, TickReport, find_jobs, reconcile_jobs
from handlers.runtime import Runtime
from handlers.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)

ACTIVE_DIR = layout.INDEX_DIR + "active/"
SWEPT_KEY = layout.INDEX_DIR + "swept"


@dataclass
class Index:
    """One listing of the index: the entries per folder, the sweep marker, and the clock."""

    entries: dict[str, list[ObjectInfo]]
    swept: ObjectInfo | None
    junk: list[ObjectInfo]  # keys under the index that no dropreel wrote: deleted on sight
    server_time: datetime
    pages: int

    def due(self, folder: str) -> datetime:
        """The earliest moment any entry of `folder` asks for."""
        return min(due for obj in self.entries[folder] if (due := _due_of(obj.key)) is not None)


@dataclass
class Look:
    """What looking at one folder found and did."""

    report: TickReport
    jobs: list[Job] = field(default_factory=list)
    next_look: datetime | None = None


def read_index(storage: Storage) -> Index:
    listing = storage.list(layout.INDEX_DIR)
    entries: dict[str, list[ObjectInfo]] = defaultdict(list)
    swept, junk = None, []
    for obj in listing.objects:
        if obj.key == SWEPT_KEY:
            swept = obj
            continue
        folder = folder_of(obj.key)
        if folder is None:
            junk.append(obj)
        else:
            entries[folder].append(obj)
    return Index(dict(entries), swept, junk, listing.server_time, listing.pages)


def entry_key(folder: str, due: datetime) -> str:
    return f"{ACTIVE_DIR}{quote(folder, safe='')}@{math.ceil(due.timestamp())}"


def folder_of(key: str) -> str | None:
    """The folder an entry names; None for a key that is not a well-formed entry."""
    if not key.startswith(ACTIVE_DIR) or _due_of(key) is None:
        return None
    folder = unquote(key[len(ACTIVE_DIR) :].rpartition("@")[0])
    if folder and not (folder.endswith("/") and layout.is_safe_key(folder[:-1])):
        return None
    if layout.is_reserved(folder):  # dropreel's own folders hold no jobs
        return None
    return folder


def _due_of(key: str) -> datetime | None:
    digits = key.rpartition("@")[2]
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        return None
    return datetime.fromtimestamp(int(digits), UTC)


def next_look(
    jobs: list[Job], now: datetime, lease_seconds: float, grace_seconds: float = 0.0
) -> datetime | None:
    """When a poller must look at these jobs' folder again; None when nothing in it needs a
    poller (every job finished and announced, or waiting past its grace period for a part the
    user has to add: handlers/feedback.py has told them by then)."""
    lease = timedelta(seconds=lease_seconds)
    grace = timedelta(seconds=grace_seconds)
    moments: list[datetime] = []
    for job in jobs:
        listed_lease = job.marker(Marker.LEASE)
        newest = job.newest_input
        if job.phase is Phase.INCOMPLETE and newest is not None and newest + grace > now:
            moments.append(newest + grace)  # the feedback look, should no other file come
        elif job.phase is Phase.SETTLING and job.ready_at is not None:
            moments.append(job.ready_at)
        elif job.phase in (Phase.READY, Phase.EXPIRED):
            moments.append(now + lease)  # claimed or taken back just now (by us or another)
        elif listed_lease is not None and not job.phase.decided:
            # running, or decided with its message not yet sent (a decided version's kept
            # lease needs no poller: any later look or the sweep deletes it)
            moments.append(max(listed_lease.last_modified + lease, now))
    return min(moments, default=None)


def look(rt: Runtime, folder: str, dispatcher: Dispatcher) -> Look:
    """List one folder (its own files and metadata), act on its jobs, and say when it next
    needs a look."""
    listing = rt.storage.list_folder(folder)
    jobs = [j for j in find_jobs(rt, listing.objects, listing.server_time) if j.folder == folder]
    report = reconcile_jobs(
        rt, jobs, listing.objects, listing.server_time, dispatcher, listed_at=listing.started
    )
    report.requests += listing.pages
    settings = rt.settings
    due = next_look(
        jobs, listing.server_time, settings.lease_seconds, settings.incomplete_grace_seconds
    )
    return Look(report, jobs, due)


def reschedule(
    storage: Storage, folder: str, due: datetime | None, listed: list[ObjectInfo]
) -> int:
    """Make `folder`'s entry say `due` (None: remove it), replacing the entries `listed`.
    Returns the requests made. An entry that cannot be written (a folder name too long for a
    key) is logged: the sweep still finds that folder."""
    requests = 0
    key = entry_key(folder, due) if due is not None else None
    if key is not None and all(obj.key != key for obj in listed):
        try:
            storage.put(key, b"", "text/plain")
            requests += 1
        except StorageError as err:
            log.warning("index: no entry for %r (%s); the sweep finds it", folder[:200], err)
            return requests  # keep the old entries: they still lead a tick here
    return requests + forget(storage, [obj for obj in listed if obj.key != key])


def forget(storage: Storage, entries: list[ObjectInfo]) -> int:
    """Delete index entries (a delete that fails leaves a harmless early look). Returns the
    requests made."""
    for obj in entries:
        try:
            storage.delete(obj.key)
        except StorageError as err:
            log.warning("index: could not delete %s: %s", obj.key[:200], first_line(err))
    return len(entries)


def note_active(rt: Runtime, found: Look) -> int:
    """After a webhook's look at a folder: add an entry when it has work in flight, so a poller
    follows the job should this process stop. Returns the requests made (0 or 1)."""
    if found.next_look is None or rt.settings.sweep_interval == 0:
        return 0  # nothing in flight, or every tick sweeps and nobody reads the index
    folder = found.jobs[0].folder
    try:
        return reschedule(rt.storage, folder, found.next_look, [])
    except StorageError as err:  # the sweep is the net; the event itself was handled
        log.warning("index: could not note %r: %s", folder[:200], first_line(err))
        return 0
