"""Asking the platform about a call it was handed, before taking its job back.

A job handed to a remote platform (a Modal engine class) can wait in that platform's queue, or
for its container to start, for longer than any lease: nobody heartbeats it meanwhile. So the
dispatcher records the call's id in the lease (`Lease.record_call`), and when such a lease
expires the reconciler asks the platform through this port before it takes the job back:

- the call is still queued, starting or running: the job is only waiting. The lease is renewed
  for its holder by compare-and-swap on the listed ETag (so every poller agrees) and nothing
  else happens; the attempt does not change.
- the call finished, failed, timed out, was cancelled, or the platform does not know it: the
  job is taken back as any expired lease (attempt + 1), and the old call is cancelled once the
  take-back is won, so a superseded call never occupies a GPU.

The lease take-back stays the one retry mechanism; the platform's own retries are off. A lease
without a call id (local workers, or a dispatcher that could not record it) expires as before.
"""

from __future__ import annotations

import logging
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from handlers.claims import LeaseRecord, keep_for_holder
from handlers.jobs import Job

if TYPE_CHECKING:
    from handlers.runtime import Runtime

log = logging.getLogger(__name__)


class CallState(StrEnum):
    """What the platform says about a call."""

    WAITING = "waiting"  # queued, its container starting, or running
    FINISHED = "finished"  # returned (whatever the job's outcome)
    DEAD = "dead"  # crashed, preempted for good, timed out or cancelled
    UNKNOWN = "unknown"  # not found, or the platform could not be asked


class CallRegistry(Protocol):
    """The platform's view of the calls a dispatcher made (on Modal: `infra/modal/calls.py`).
    Neither method raises: a platform that cannot be asked answers UNKNOWN, and a cancel that
    fails is logged by the implementation."""

    def state(self, call_id: str) -> CallState: ...

    def cancel(self, call_id: str) -> None: ...


def still_waiting(rt: Runtime, job: Job, record: LeaseRecord) -> bool:
    """True when the expired lease's call is still queued, starting or running: the lease is
    renewed for its holder (unless it changed since the listing, which means someone acted) and
    the job is left alone this tick."""
    if rt.calls is None or not record.call:
        return False
    state = rt.calls.state(record.call)
    if state is not CallState.WAITING:
        log.info("%s: its call %s is %s; taking the job back", job.name, record.call, state)
        return False
    if keep_for_holder(rt.storage, job, record):
        log.info("%s: its call %s is still waiting or running; lease kept", job.name, record.call)
    return True


def cancel_superseded(rt: Runtime, record: LeaseRecord | None) -> None:
    """Cancel the call of a lease just taken back, so it never runs (or runs no longer)."""
    if rt.calls is not None and record is not None and record.call:
        rt.calls.cancel(record.call)
