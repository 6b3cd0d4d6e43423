"""Claims and leases on conditional writes: exactly one worker renders a job version.

- claim: create `<version>.lease` with If-None-Match: * (one winner, however many pollers race),
  then check the version has no done/failed marker (a listing older than its finish).
- heartbeat: rewrite the lease with If-Match: <etag>; its new LastModified keeps it fresh.
  It runs from the claim until the run ends, queue time included: a claim never expires while
  its job waits, and a run confirms its lease before its first write.
- take back: a lease not renewed within lease_seconds is rewritten with If-Match on the listed
  ETag (compare-and-swap), attempt + 1; the old worker's next heartbeat then fails and it stops.
- finish: rewrite the lease with If-Match into a *final* record (the job's final status, done
  or failed). The lease is the one key that decides a version's outcome: whoever turns it final
  first wins, so done and failed exclude each other. Then the notification is sent, then
  `<version>.done`, `.failed` or `.cancelled` is written (If-None-Match: *, a copy of what the
  final lease says): the marker records the notification as sent.
- outbox: a final lease with no marker beside it is a notification not yet recorded as sent.
  The finisher keeps it alive while it notifies; if it dies, the lease expires and the next
  tick takes it back (compare-and-swap on the listed ETag) and finishes the job: notifies,
  writes the marker.
- kept lease: a decided version keeps its lease for at least KEEP_DECIDED_LEASE_SECONDS after
  its marker (then any look at its folder deletes it; the hourly sweep looks at every folder).
  While it is there, a claim made from a listing older than the finish fails at its
  conditional create, so a claim made soon after its listing needs no read to prove that the
  version was not finished meanwhile (see `claim`).

Every conditional write carries a fresh write id in its body, so a retried write that meets 412
can tell its own applied write from someone else's (see `infra/storage/s3.py`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, Field, ValidationError

from handlers import layout
from handlers.errors import LeaseLost, ObjectNotFound, PreconditionFailed, StorageError
from handlers.jobs import Job
from handlers.layout import Marker
from handlers.status import JobState, JobStatus
from handlers.storage import ObjectInfo, Storage

log = logging.getLogger(__name__)

_worker_id = ""


def new_worker_id(host: str | None = None) -> str:
    """Name this process afresh in the leases it writes. A process restored from a memory
    snapshot (Modal) calls this once it runs, so that its containers do not share one id."""
    global _worker_id
    _worker_id = f"{host or socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    return _worker_id


def worker_id() -> str:
    return _worker_id or new_worker_id()


JSON = "application/json"
DECIDED = (Marker.DONE, Marker.FAILED, Marker.CANCELLED)  # the markers that end a version
# A claim whose conditional create returned within FRESH_LISTING_SECONDS of its listing's first
# request skips the read for a finish its listing missed; KEEP_DECIDED_LEASE_SECONDS must stay
# well above it (the margin covers the storage servers' clocks, which date markers and listings).
FRESH_LISTING_SECONDS = 30.0
KEEP_DECIDED_LEASE_SECONDS = 600.0
MARKER_OF = {JobState.DONE: Marker.DONE, JobState.CANCELLED: Marker.CANCELLED}  # else failed


class LeaseRecord(BaseModel):
    """What a lease file holds; written and read only here."""

    attempt: int = Field(ge=1)
    version: str
    worker: str
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    write: str = Field(default_factory=lambda: uuid.uuid4().hex[:12])  # unique per write
    final: JobStatus | None = None  # set once the version is done or failed (the outbox entry)
    call: str = ""  # the platform call that holds the job (a Modal FunctionCall id), if any

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump()).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> LeaseRecord:
        """Raises ValidationError for a body that is not a lease (hand-edited, truncated)."""
        return cls.model_validate_json(body)


@dataclass
class Lease:
    """A held claim on one job version."""

    storage: Storage
    key: str
    etag: str
    attempt: int
    version: str
    worker: str = field(default_factory=worker_id)
    final: JobStatus | None = None
    call: str = ""  # see LeaseRecord.call; kept in every renewal
    # the heartbeat thread and the run both renew: one at a time, each with the latest ETag
    _renewing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _released: bool = field(default=False, repr=False, compare=False)

    def body(self, final: JobStatus | None = None) -> bytes:
        """The lease file as of now (a fresh `at` and write id on every write)."""
        record = LeaseRecord(
            attempt=self.attempt,
            version=self.version,
            worker=self.worker,
            final=self.final if final is None else final,
            call=self.call,
        )
        return record.to_bytes()

    def renew(self, final: JobStatus | None = None) -> None:
        """Heartbeat (or, with `final`, turn the lease final). Raises LeaseLost if someone took
        the job back; a released lease is not renewed."""
        try:
            with self._renewing:
                if self._released:
                    return
                body = self.body(final)
                try:
                    self.etag = self.storage.put_if_match(self.key, body, self.etag, JSON)
                except PreconditionFailed:
                    if not self._rewritten_for_our_call():
                        raise
                    self.etag = self.storage.put_if_match(self.key, body, self.etag, JSON)
                if final is not None:
                    self.final = final
        except (PreconditionFailed, ObjectNotFound) as err:
            raise LeaseLost(f"lease {self.key} was taken over by another worker") from err

    def _rewritten_for_our_call(self) -> bool:
        """After a 412: whether the lease was rewritten on behalf of this lease's platform call
        (the dispatcher recorded the call after spawning it, or a poller kept the lease while
        the call waited or its heartbeats failed), not taken back; then its ETag is adopted. A
        take-back, a give-up or a final record never names the call at this attempt."""
        if not self.call:
            return False
        listed = next((o for o in self.storage.list(self.key).objects if o.key == self.key), None)
        if listed is None:
            return False
        try:
            record = LeaseRecord.from_bytes(self.storage.get(self.key))
        except (ObjectNotFound, ValidationError):
            return False
        if record.call != self.call or record.attempt != self.attempt or record.final:
            return False
        self.etag = listed.etag  # a later rewrite makes the retried write fail: safe
        return True

    def record_call(self, call_id: str) -> bool:
        """Write the id of the platform call this lease was handed to (one conditional write,
        so a poller can ask the platform about it before taking the job back). False if the
        lease changed meanwhile: the call already started and renewed it itself (it records
        its own id), or the job was taken back."""
        self.call = call_id
        try:
            self.renew()
        except LeaseLost:
            return False
        return True

    def finish(self, status: JobStatus) -> None:
        """Decide the version's outcome: the lease becomes final with `status` (done or failed).
        Raises LeaseLost if the lease is no longer ours (then someone else decides)."""
        self.renew(status.model_copy(deep=True))

    def retire(self) -> None:
        """The version is decided and its marker written: no more heartbeats. The lease stays
        (see the module's "kept lease"), so a claim from an older listing fails."""
        with self._renewing:
            self._released = True

    def release(self) -> None:
        """Retire the lease and delete it: for a version that is no one's any more (its inputs
        were replaced or deleted), whose outcome no marker records."""
        self.retire()
        self.storage.delete(self.key)


def claim(storage: Storage, job: Job, listed_at: float | None = None) -> Lease | None:
    """Claim a ready job; None if another worker got there first, or finished it already.

    The job was found ready in a listing, which can be older than a finish: the version may have
    been claimed, rendered and decided since. `listed_at` is when that listing's first request
    was sent (`Listing.started`, this process's monotonic clock).
    - Our conditional create returned within FRESH_LISTING_SECONDS of `listed_at`: any finish
      our listing missed wrote its marker after that moment, and its lease stays at least
      KEEP_DECIDED_LEASE_SECONDS past the marker, so it was still there and our create failed.
      Winning the create proves no finish was missed: no read.
    - Otherwise (or no `listed_at`): once our lease exists, a decided version's lease was
      deleted, and only after its marker; the marker reads (only for a won claim) find it."""
    lease = Lease(storage, job.marker_key(Marker.LEASE), "", 1, job.version)
    try:
        lease.etag = storage.put_if_absent(lease.key, lease.body(), JSON)
    except PreconditionFailed:
        return None
    fresh = listed_at is not None and time.monotonic() - listed_at <= FRESH_LISTING_SECONDS
    if not fresh and _decided(storage, job):
        log.info("%s was finished since it was listed; not rendering it again", job.name)
        storage.delete(lease.key)
        return None
    return lease


def _decided(storage: Storage, job: Job) -> bool:
    """True when the version's done, failed or cancelled marker exists."""
    for marker in DECIDED:
        try:
            storage.get(job.marker_key(marker))
        except ObjectNotFound:
            continue
        return True
    return False


_LEASE = f".{Marker.LEASE}"
_DECIDED = tuple(f".{marker}" for marker in DECIDED)


def decided_leases(objects: Sequence[ObjectInfo], now: datetime) -> dict[str, bool]:
    """The lease keys among `objects` whose version is decided (its done, failed or cancelled
    marker is listed too), each with whether it may go now: its marker was written at least
    KEEP_DECIDED_LEASE_SECONDS before `now` (the server's clock, as the marker's date is)."""
    leases = [o.key for o in objects if o.key.endswith(_LEASE) and layout.parse_meta(o.key)]
    if not leases:  # most folders (a sweep's history): one suffix test per key
        return {}
    marked: dict[str, datetime] = {}
    for obj in objects:
        if obj.key.endswith(_DECIDED) and layout.parse_meta(obj.key):
            base = obj.key.rpartition(".")[0]
            marked[base] = min(obj.last_modified, marked.get(base, obj.last_modified))
    keep = timedelta(seconds=KEEP_DECIDED_LEASE_SECONDS)
    return {
        key: marked[base] + keep <= now
        for key in leases
        if (base := key.rpartition(".")[0]) in marked
    }


def read_lease(storage: Storage, job: Job) -> LeaseRecord | None:
    """The record in an expired lease (one GET, only for expired leases); None for a lease that
    is gone or unreadable."""
    try:
        return LeaseRecord.from_bytes(storage.get(job.marker_key(Marker.LEASE)))
    except (ObjectNotFound, ValidationError):
        return None


def read_attempt(storage: Storage, job: Job) -> int:
    """The attempt recorded in an expired lease; a lease gone or unreadable counts as 1."""
    record = read_lease(storage, job)
    return record.attempt if record else 1


def take_back(
    storage: Storage, job: Job, attempt: int, final: JobStatus | None = None
) -> Lease | None:
    """Compare-and-swap the lease *as listed* (its ETag) to ourselves as `attempt`, keeping a
    final record final; None if we lost the race (it changed since the listing)."""
    listed = job.marker(Marker.LEASE)
    if listed is None:
        return None
    lease = Lease(storage, job.marker_key(Marker.LEASE), "", attempt, job.version, final=final)
    try:
        lease.etag = storage.put_if_match(lease.key, lease.body(), listed.etag, JSON)
    except (PreconditionFailed, ObjectNotFound):
        return None
    return lease


def keep_for_holder(storage: Storage, job: Job, record: LeaseRecord) -> bool:
    """Renew an expired lease as it is (same holder, attempt and call) by compare-and-swap on
    the listed ETag, for a holder whose call is still waiting; False if it changed since."""
    listed = job.marker(Marker.LEASE)
    if listed is None:
        return False
    body = LeaseRecord(**record.model_dump(exclude={"at", "write"})).to_bytes()
    try:
        storage.put_if_match(listed.key, body, listed.etag, JSON)
    except (PreconditionFailed, ObjectNotFound):
        return False
    return True


def write_marker(storage: Storage, job: Job, final: JobStatus) -> None:
    """Write the done or failed marker a final lease decided. Idempotent: the lease already
    decided the outcome, so a marker that exists is this same fact, written before a crash."""
    marker = MARKER_OF.get(final.state, Marker.FAILED)
    try:
        storage.put_if_absent(job.marker_key(marker), final.model_dump_json().encode(), JSON)
    except PreconditionFailed:
        log.info("%s already exists", job.marker_key(marker))


class LeaseKeeper:
    """Keeps a claim alive on a background thread from the moment it is made until its run ends.

    Whoever holds a claimed job that waits (a worker pool's queue) starts the keeper at claim
    time and hands it to the run, so a queued claim never expires. `check()` raises LeaseLost
    once a heartbeat has failed, so the worker stops before writing anything; `confirm()` renews
    now, before a run's first write and before it commits. Transient storage errors during a
    heartbeat are logged and tried again next beat.
    """

    def __init__(self, lease: Lease, interval: float) -> None:
        self.lease = lease
        self.interval = interval
        self._stop = threading.Event()
        self._lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.lease.renew()
            except LeaseLost as err:
                self._lost = err
                return
            except StorageError as err:
                log.warning("heartbeat for %s failed, will retry: %s", self.lease.key, err)

    def check(self) -> None:
        if self._lost is not None:
            raise self._lost

    def confirm(self) -> None:
        """Renew now and raise LeaseLost if the lease is no longer ours (before writing)."""
        self.check()
        self.lease.renew()
