"""Claims and leases on conditional writes: exactly one worker renders a job version.

- claim: create `<version>.lease` with If-None-Match: * (one winner, however many pollers race).
- heartbeat: rewrite the lease with If-Match: <etag>; its new LastModified keeps it fresh.
  It runs from the claim until the run ends, queue time included: a claim never expires while
  its job waits, and a run confirms its lease before its first write.
- take back: a lease not renewed within lease_seconds is rewritten with If-Match on the listed
  ETag (compare-and-swap), attempt + 1; the old worker's next heartbeat then fails and it stops.
- finish: create `<version>.done` / `<version>.failed` with If-None-Match: *: the single winner
  is the only one who notifies, so every job version gets exactly one message.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel, Field, ValidationError

from handlers.errors import LeaseLost, ObjectNotFound, PreconditionFailed, StorageError
from handlers.jobs import Job
from handlers.layout import Marker
from handlers.storage import Storage

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
JSON = "application/json"


class LeaseRecord(BaseModel):
    """What a lease file holds; written and read only here."""

    attempt: int = Field(ge=1)
    version: str
    worker: str
    at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

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
    worker: str = WORKER_ID
    # the heartbeat thread and the run both renew: one at a time, each with the latest ETag
    _renewing: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def body(self) -> bytes:
        """The lease file as of now (a fresh `at` on every write)."""
        record = LeaseRecord(attempt=self.attempt, version=self.version, worker=self.worker)
        return record.to_bytes()

    def renew(self) -> None:
        """Heartbeat. Raises LeaseLost if someone took the job back."""
        try:
            with self._renewing:
                self.etag = self.storage.put_if_match(self.key, self.body(), self.etag, JSON)
        except (PreconditionFailed, ObjectNotFound) as err:
            raise LeaseLost(f"lease {self.key} was taken over by another worker") from err


def claim(storage: Storage, job: Job) -> Lease | None:
    """Claim a ready job; None if another worker got there first."""
    lease = Lease(storage, job.marker_key(Marker.LEASE), "", 1, job.version)
    try:
        lease.etag = storage.put_if_absent(lease.key, lease.body(), JSON)
    except PreconditionFailed:
        return None
    return lease


def read_attempt(storage: Storage, job: Job) -> int:
    """The attempt recorded in an expired lease (one GET, only for expired leases); a lease
    that is gone or unreadable counts as attempt 1."""
    try:
        return LeaseRecord.from_bytes(storage.get(job.marker_key(Marker.LEASE))).attempt
    except (ObjectNotFound, ValidationError):
        return 1


def take_back(storage: Storage, job: Job, attempt: int) -> Lease | None:
    """Compare-and-swap an expired lease to ourselves as `attempt`; None if we lost the race."""
    listed = job.marker(Marker.LEASE)
    if listed is None:
        return None
    lease = Lease(storage, job.marker_key(Marker.LEASE), "", attempt, job.version)
    try:
        lease.etag = storage.put_if_match(lease.key, lease.body(), listed.etag, JSON)
    except (PreconditionFailed, ObjectNotFound):
        return None
    return lease


def mark_once(storage: Storage, job: Job, marker: Marker, body: bytes = b"{}") -> bool:
    """Create the done/failed marker for this version; True only for the single winner."""
    try:
        storage.put_if_absent(job.marker_key(marker), body, JSON)
    except PreconditionFailed:
        return False
    return True


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
