"""Retry and cancel from the bucket, and the end of renders whose inputs changed or went away.

A storage console can upload, replace and delete files, nothing more, so that is the whole
control surface, the same on S3, R2 and a local folder:

- `<stem>.retry` beside a job (any content, even empty) renders its current version again: a
  failed or cancelled job without changing a byte of it, or a done one (for example after its
  folder settings changed). The decided marker and its kept lease are deleted and the job is
  claimed like any ready job, so two pollers still render it once.
- `<stem>.cancel` beside a job cancels it: a running render stops at its next progress step and
  publishes nothing; a queued one is never rendered. status.json says "cancelled"; nothing is
  announced (the user asked for it). A retry file renders it again later.
- A render whose version is no longer the job's (an input replaced or deleted mid-render) is
  stopped the same way, and never announces "done".

A control file is used once: the tick that acts on it first creates
`.dropreel/<stem>/used-<hash of its key, ETag and date>` with a conditional write, so a poller
acting on an older listing (one that still shows the file) does nothing; then the file is
deleted. `<stem>` is the job's stem or the stem of any of its inputs. Control files are never
inputs and never change a job's version.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timedelta

from handlers import layout
from handlers.claims import DECIDED, JSON, Lease, LeaseRecord, claim, decided_leases
from handlers.errors import ObjectNotFound, PreconditionFailed, first_line
from handlers.jobs import Job, Phase
from handlers.layout import Marker
from handlers.lifecycle import complete
from handlers.runtime import Runtime
from handlers.status import JobState, JobStatus, write_status
from handlers.storage import ObjectInfo

log = logging.getLogger(__name__)

RETRY, CANCEL = "retry", "cancel"
_WAITING = (Phase.SETTLING, Phase.READY)
_RUNNING = (Phase.RUNNING, Phase.EXPIRED)


def control_type(name: str) -> tuple[str, str] | None:
    """('retry'|'cancel', stem) for a control file's name, else None."""
    stem, dot, ext = name.rpartition(".")
    word = ext.lower()
    if name.startswith(".") or not dot or not stem or word not in (RETRY, CANCEL):
        return None
    return word, stem


def apply(
    rt: Runtime, jobs: list[Job], objects: Sequence[ObjectInfo], now: datetime, errors: list[str]
) -> None:
    """Act on the control files beside `jobs` (found in `objects`, listed at `now`, the server's
    clock) and stop renders of versions that are gone. Retried jobs leave here ready to claim.
    A job whose step raises is logged in `errors`."""
    requests: dict[tuple[str, str], list[ObjectInfo]] = defaultdict(list)
    for obj in objects:
        if layout.is_reserved(obj.key) or not layout.is_safe_key(obj.key):
            continue
        folder, name = layout.split_key(obj.key)
        typed = control_type(name)
        if typed:
            requests[(folder, typed[1])].append(obj)
    for job in jobs:
        for obj in (o for stem in _stems(job) for o in requests.get((job.folder, stem), [])):
            _guarded(errors, job.name, _obey, rt, job, obj)
    current = {(job.folder, job.meta_stem): job for job in jobs}
    lease_for = timedelta(seconds=rt.settings.lease_seconds)
    decided = decided_leases(objects, now)
    for key, spent in decided.items():  # a decided version's lease, kept while it may matter
        if spent:
            _guarded(errors, key, rt.storage.delete, key)
    for obj in objects:
        meta = layout.parse_meta(obj.key)
        if meta is None or not meta[2].endswith(f".{Marker.LEASE}") or obj.key in decided:
            continue
        job = current.get(meta[:2])
        version = meta[2].rpartition(".")[0]
        if job is None or job.version != version:
            expired = obj.last_modified + lease_for <= now
            _guarded(errors, obj.key, _stop_stale, rt, obj, version, job, expired)


def _guarded(errors: list[str], name: str, step, *args) -> None:
    try:
        step(*args)
    except Exception as err:  # one job's trouble never stops the tick for the others
        log.error("%s: control step skipped this tick: %s", name[:200], first_line(err))
        errors.append(name)


def _stems(job: Job) -> list[str]:
    stems = {job.stem}
    for obj in job.inputs:
        typed = layout.input_type(layout.split_key(obj.key)[1])
        if typed and typed[1]:
            stems.add(typed[1])
    return sorted(stems)


def _obey(rt: Runtime, job: Job, obj: ObjectInfo) -> None:
    word = control_type(layout.split_key(obj.key)[1])[0]  # type: ignore[index]
    if word == RETRY and job.phase in _RUNNING and _is_final(rt, job.marker_key(Marker.LEASE)):
        return  # decided, its message still going out: the next tick decides
    if word == RETRY and job.phase.decided:
        act = _retry
    elif word == CANCEL and job.phase in (*_WAITING, *_RUNNING):
        act = _cancel
    else:
        act = None  # nothing to retry or to cancel: the file is used up all the same
    if _use(rt, job, obj) and act is not None:
        act(rt, job, obj)


def _use(rt: Runtime, job: Job, obj: ObjectInfo) -> bool:
    """Record that this control file was obeyed, once; then delete it. False when another
    tick already did (our listing still showed it)."""
    stamp = f"{obj.key}\0{obj.etag}\0{obj.last_modified.isoformat()}".encode()
    key = f"{layout.meta_prefix(job.folder, job.meta_stem)}used-{_digest(stamp)}"
    try:
        record = {"file": obj.key, "write": uuid.uuid4().hex}  # unique body: see claims.py
        rt.storage.put_if_absent(key, json.dumps(record).encode(), JSON)
        won = True
    except PreconditionFailed:
        won = False
    rt.storage.delete(obj.key)
    return won


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _retry(rt: Runtime, job: Job, obj: ObjectInfo) -> None:
    """Forget the version's outcome; the caller's claim renders it again (attempt 1). The kept
    lease goes first: a look between the two deletes then still sees the version decided."""
    rt.storage.delete(job.marker_key(Marker.LEASE))
    job.markers.get(job.version, {}).pop(Marker.LEASE, None)
    for marker in DECIDED:
        rt.storage.delete(job.marker_key(marker))
        job.markers.get(job.version, {}).pop(marker, None)
    job.phase, job.ready_at = Phase.READY, None
    log.info("%s: retry requested", job.name)


def _cancel(rt: Runtime, job: Job, obj: ObjectInfo) -> None:
    name = layout.split_key(obj.key)[1]
    status = JobStatus.fresh(
        job,
        JobState.CANCELLED,
        1,
        rt.settings.max_attempts,
        error=f"cancelled by {name}: drop a {job.stem}.retry file beside it to render it again",
    )
    if job.phase in _WAITING:
        lease = claim(rt.storage, job)
        if lease is not None:
            lease.finish(status)
    else:
        lease = _take_over(rt, job.marker_key(Marker.LEASE), job.version, status)
    if lease is None:
        return  # finished or decided meanwhile: nothing left to cancel
    complete(rt, job, lease)
    job.phase = Phase.CANCELLED
    log.info("%s: cancelled by %s", job.name, name)


def _is_final(rt: Runtime, key: str) -> bool:
    try:
        return LeaseRecord.from_bytes(rt.storage.get(key)).final is not None
    except (ObjectNotFound, ValueError):
        return False


def _take_over(rt: Runtime, key: str, version: str, final: JobStatus) -> Lease | None:
    """Turn a running version's lease final (`final`) by compare-and-swap on its ETag as it is
    now (its worker renews it at progress steps, so it is listed again first). The worker's
    next renewal fails and it stops. None when the lease is gone or already final."""
    for _ in range(3):
        listed = next((o for o in rt.storage.list(prefix=key).objects if o.key == key), None)
        if listed is None:
            return None
        try:
            record: LeaseRecord | None = LeaseRecord.from_bytes(rt.storage.get(key))
        except ObjectNotFound:
            return None
        except ValueError:  # unreadable: ours to end all the same
            record = None
        if record is not None and record.final is not None:
            return None  # decided: it finishes as it was decided
        final.attempt = record.attempt if record else 1
        lease = Lease(rt.storage, key, "", final.attempt, version)
        try:
            lease.etag = rt.storage.put_if_match(key, lease.body(final), listed.etag, JSON)
        except (PreconditionFailed, ObjectNotFound):
            continue  # renewed between our listing and our write: look again
        lease.final = final
        return lease
    return None


def _stop_stale(rt: Runtime, obj: ObjectInfo, version: str, job: Job | None, expired: bool) -> None:
    """End the lease of a version whose inputs were replaced or deleted: its worker stops at
    its next progress step and publishes nothing, and the version announces nothing. A final
    lease is left to its holder while it lives; expired, it is an outbox entry of a version
    nobody has any more: deleted, unsent."""
    if expired and _is_final(rt, obj.key):
        rt.storage.delete(obj.key)
        return
    folder, stem, _ = layout.parse_meta(obj.key)  # type: ignore[misc]
    gone = job is None or job.phase is Phase.INCOMPLETE
    reason = "its inputs were deleted" if gone else "an input was replaced; the new one renders"
    status = JobStatus(
        state=JobState.CANCELLED,
        job=f"{folder}{stem}",
        version=version,
        error=f"cancelled: {reason}",
    )
    lease = _take_over(rt, obj.key, version, status)
    if lease is None:
        return
    if gone:  # nothing else will say what became of it
        write_status(rt.storage, layout.status_key(folder, stem), status)
    lease.release()
    log.info("%s%s: stopped version %s: %s", folder, stem, version, reason)
