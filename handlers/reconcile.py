"""Decide and act on a set of jobs: claim the ready, take back the expired, fail the exhausted,
and send the notifications a dead worker left unsent (the outbox).

The poller calls this for each folder it looks at (the folders the active index names, or every
folder of a sweep); the webhook for the folder an event names. Each
claimed job goes to a dispatcher (in-process, a worker pool, or a Modal GPU class). Whatever it
takes over, it takes by compare-and-swap on the lease's ETag as listed, so it never acts on a
lease that changed since.

Every job is acted on alone: an error in one job's claim, status or markers is logged in one
line and skips that job for this tick, never the jobs after it. A job whose metadata keys would
pass the store's key limit is failed for good under a short metadata name (see
`layout.short_meta_stem`), so the user finds why and later ticks leave it alone.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from handlers import control, feedback
from handlers.calls import cancel_superseded, still_waiting
from handlers.claims import Lease, LeaseRecord, claim, read_lease, take_back
from handlers.errors import KeyTooLong, first_line
from handlers.jobs import Job, Phase, discover
from handlers.layout import MAX_KEY_BYTES, short_meta_stem
from handlers.lifecycle import RunOutcome, fail_unstarted, resend
from handlers.runtime import Runtime
from handlers.storage import Listing, ObjectInfo

log = logging.getLogger(__name__)


class Dispatcher(Protocol):
    def dispatch(self, job: Job, lease: Lease) -> None: ...


@dataclass
class TickReport:
    """What one reconcile pass saw and did."""

    jobs: int = 0
    states: Counter = field(default_factory=Counter)
    claimed: list[str] = field(default_factory=list)
    taken_back: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # jobs skipped this tick (logged)
    resent: list[str] = field(default_factory=list)  # notifications the outbox sent
    requests: int = 0
    next_ready_in: float | None = None

    def add(self, other: TickReport) -> None:
        """Fold another pass (another folder of the same tick) into this one."""
        self.jobs += other.jobs
        self.states.update(other.states)
        for name in ("claimed", "taken_back", "failed", "errors", "resent"):
            getattr(self, name).extend(getattr(other, name))
        self.requests += other.requests
        self.wake_in(other.next_ready_in)

    def wake_in(self, seconds: float | None) -> None:
        """Something needs a look in `seconds`: keep the earliest."""
        if seconds is not None:
            now = self.next_ready_in
            self.next_ready_in = seconds if now is None else min(now, seconds)


def reconcile(rt: Runtime, listing: Listing, dispatcher: Dispatcher) -> TickReport:
    jobs = find_jobs(rt, listing.objects, listing.server_time)
    report = reconcile_jobs(
        rt, jobs, listing.objects, listing.server_time, dispatcher, listed_at=listing.started
    )
    report.requests += listing.pages
    return report


def find_jobs(rt: Runtime, objects: Iterable[ObjectInfo], now: datetime) -> list[Job]:
    settings = rt.settings
    return discover(objects, now, settings.settle_seconds, settings.lease_seconds)


def reconcile_jobs(
    rt: Runtime,
    jobs: list[Job],
    objects: Sequence[ObjectInfo],
    now: datetime,
    dispatcher: Dispatcher,
    report: TickReport | None = None,
    listed_at: float | None = None,
) -> TickReport:
    """Act on jobs found in `objects`, a listing made at `now` (the storage server's clock),
    adding to `report` (a sweep keeps one for all its folders) or to a new one. `listed_at`:
    the listing's `started`, when it is one whole listing (lets a claim skip its read)."""
    report = report or TickReport()
    report.jobs += len(jobs)
    control.apply(rt, jobs, objects, now, report.errors)  # retry/cancel files, stale renders
    feedback.announce(rt, jobs, objects, now, report.errors)  # folders whose files make no job
    for job in jobs:
        report.states[job.phase] += 1
        try:
            _act(rt, job, now, dispatcher, report, listed_at)
        except Exception as err:  # one job's trouble never stops the tick for the others
            log.error("%s: skipped this tick: %s", job.name[:200], first_line(err))
            report.errors.append(job.name)
    return report


def _act(
    rt: Runtime,
    job: Job,
    now: datetime,
    dispatcher: Dispatcher,
    report: TickReport,
    listed_at: float | None,
) -> None:
    """Claim, take back, give up on or finish announcing one job, as its phase says."""
    settings = rt.settings
    if job.phase is Phase.READY:
        report.requests += 1
        if not _keys_fit(rt, job, report):
            return
        lease = claim(rt.storage, job, listed_at)
        if lease:
            report.claimed.append(job.name)
            dispatcher.dispatch(job, lease)
    elif job.phase is Phase.EXPIRED:
        report.requests += 2
        record = read_lease(rt.storage, job)
        if record is not None and record.final is not None:
            _resend(rt, job, record, report)  # decided, then its holder died
            return
        if record is not None and still_waiting(rt, job, record):
            return  # its call is queued, starting or running (handlers/calls.py)
        attempt = record.attempt if record else 1
        if attempt >= settings.max_attempts:
            _give_up(rt, job, attempt, report)
            return
        lease = take_back(rt.storage, job, attempt + 1)
        if lease:
            report.taken_back.append(job.name)
            cancel_superseded(rt, record)
            dispatcher.dispatch(job, lease)
    elif job.phase is Phase.SETTLING and job.ready_at is not None:
        report.wake_in((job.ready_at - now).total_seconds())


def _keys_fit(rt: Runtime, job: Job, report: TickReport) -> bool:
    """False, after failing the job for good under a short metadata name, when a key the job
    needs is longer than the store allows (no request is made to find out)."""
    try:
        for key in job.metadata_keys():
            rt.storage.check_key(key)
    except KeyTooLong as err:
        job.meta_name = short_meta_stem(job.stem)
        shown = job.name if len(job.name) <= 80 else job.name[:80] + "…"
        error = (
            f"the file names of {shown!r} are too long: dropreel's status and marker keys for "
            f"them would pass the store's limit of {MAX_KEY_BYTES:,} bytes per key ({err}). "
            "Rename the files (or their folders) to something shorter and upload them again."
        )
        lease = claim(rt.storage, job)  # under the short name: one winner fails it
        if lease and fail_unstarted(rt, job, lease, error) is RunOutcome.FAILED:
            report.failed.append(job.name)
        return False
    return True


def _give_up(rt: Runtime, job: Job, attempt: int, report: TickReport) -> None:
    """Fail a version whose attempts are used up, on the lease as listed (by its ETag): a
    worker that renewed or finished since keeps the job."""
    lease = take_back(rt.storage, job, attempt)
    if lease is None:
        return
    error = (
        f"the worker stopped responding on each of {attempt} attempts (crashed, out of memory, "
        f"or timed out); check the worker logs, then drop {job.stem}.retry beside the inputs to "
        "try again"
    )
    if fail_unstarted(rt, job, lease, error) is RunOutcome.FAILED:
        report.failed.append(job.name)


def _resend(rt: Runtime, job: Job, record: LeaseRecord, report: TickReport) -> None:
    lease = take_back(rt.storage, job, record.attempt, final=record.final)
    if lease is not None:
        resend(rt, job, lease)
        report.resent.append(job.name)
