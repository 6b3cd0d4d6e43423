"""Claims and leases on conditional writes: exactly one worker renders a job version.

- claim: create `<version>.lease` with If-None-Match: * (one winner, however many pollers race).
- heartbeat: rewrite the lease with If-Match: <etag>; its new LastModified keeps it fresh.
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
from dataclasses import dataclass
from datetime import UTC, datetime

from handlers.errors import LeaseLost, ObjectNotFound, PreconditionFailed, StorageError
from handlers.jobs import Job
from handlers.storage import Storage

log = logging.getLogger(__name__)

WORKER_ID = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass
class Lease:
    """A held claim on one job version."""

    storage: Storage
    key: str
    etag: str
    attempt: int
    version: str
    worker: str = WORKER_ID

    def _body(self) -> bytes:
        return _lease_body(self.attempt, self.version, self.worker)

    def renew(self) -> None:
        """Heartbeat. Raises LeaseLost if someone took the job back."""
        try:
            self.etag = self.storage.put_if_match(
                self.key, self._body(), self.etag, "application/json"
            )
        except (PreconditionFailed, ObjectNotFound) as err:
            raise LeaseLost(f"lease {self.key} was taken over by another worker") from err


def _lease_body(attempt: int, version: str, worker: str) -> bytes:
    return json.dumps(
        {
            "attempt": attempt,
            "version": version,
            "worker": worker,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
    ).encode()


def claim(storage: Storage, job: Job) -> Lease | None:
    """Claim a ready job; None if another worker got there first."""
    key = job.marker_key("lease")
    try:
        etag = storage.put_if_absent(
            key, _lease_body(1, job.version, WORKER_ID), "application/json"
        )
    except PreconditionFailed:
        return None
    return Lease(storage, key, etag, 1, job.version)


def read_attempt(storage: Storage, job: Job) -> int:
    """The attempt number recorded in an expired lease (one GET, only for expired leases)."""
    try:
        return int(json.loads(storage.get(job.marker_key("lease"))).get("attempt", 1))
    except (ObjectNotFound, ValueError, AttributeError):
        return 1


def take_back(storage: Storage, job: Job, attempt: int) -> Lease | None:
    """Compare-and-swap an expired lease to ourselves as `attempt`; None if we lost the race."""
    listed = job.marker("lease")
    if listed is None:
        return None
    key = job.marker_key("lease")
    try:
        etag = storage.put_if_match(
            key, _lease_body(attempt, job.version, WORKER_ID), listed.etag, "application/json"
        )
    except (PreconditionFailed, ObjectNotFound):
        return None
    return Lease(storage, key, etag, attempt, job.version)


def mark_once(storage: Storage, job: Job, marker: str, body: bytes = b"{}") -> bool:
    """Create the done/failed marker for this version; True only for the single winner."""
    try:
        storage.put_if_absent(job.marker_key(marker), body, "application/json")
    except PreconditionFailed:
        return False
    return True


class LeaseKeeper:
    """Renews a lease on a background thread while a job renders.

    `check()` raises LeaseLost once a heartbeat has failed, so the worker stops before writing
    anything. Transient storage errors during a heartbeat are logged and tried again next beat.
    """

    def __init__(self, lease: Lease, interval: float) -> None:
        self.lease = lease
        self.interval = interval
        self._stop = threading.Event()
        self._lost: LeaseLost | None = None
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

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
        """Renew now and raise LeaseLost if the lease is no longer ours (before committing)."""
        self.check()
        self.lease.renew()
