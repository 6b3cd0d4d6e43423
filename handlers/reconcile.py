"""Decide and act on a set of jobs: claim the ready, take back the expired, fail the exhausted.

The poller calls this with the whole watch root's listing; the webhook with one folder's. Each
claimed job goes to a dispatcher (in-process, a worker pool, or a Modal GPU class).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from handlers.claims import Lease, claim, read_attempt, take_back
from handlers.jobs import Job, Phase, discover
from handlers.lifecycle import RunOutcome, fail_unstarted
from handlers.runtime import Runtime
from handlers.storage import Listing

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
    requests: int = 0
    next_ready_in: float | None = None


def reconcile(rt: Runtime, listing: Listing, dispatcher: Dispatcher) -> TickReport:
    settings = rt.settings
    jobs = discover(
        listing.objects, listing.server_time, settings.settle_seconds, settings.lease_seconds
    )
    report = TickReport(jobs=len(jobs), requests=listing.pages)
    for job in jobs:
        report.states[job.phase] += 1
        if job.phase is Phase.READY:
            report.requests += 1
            lease = claim(rt.storage, job)
            if lease:
                report.claimed.append(job.name)
                dispatcher.dispatch(job, lease)
        elif job.phase is Phase.EXPIRED:
            report.requests += 2
            attempt = read_attempt(rt.storage, job)
            if attempt >= settings.max_attempts:
                error = (
                    f"the worker stopped responding on each of {attempt} attempts (crashed, "
                    "out of memory, or timed out); check the worker logs, then re-upload an "
                    "input to try again"
                )
                if fail_unstarted(rt, job, attempt, error) is RunOutcome.FAILED:
                    report.failed.append(job.name)
                continue
            lease = take_back(rt.storage, job, attempt + 1)
            if lease:
                report.taken_back.append(job.name)
                dispatcher.dispatch(job, lease)
        elif job.phase is Phase.SETTLING and job.ready_at is not None:
            wait = (job.ready_at - listing.server_time).total_seconds()
            report.next_ready_in = min(wait, report.next_ready_in or wait)
    return report
