"""A claimed job as plain data, so any worker anywhere can run it.

A dispatcher that sends work to another process or machine (a Modal GPU class) cannot send the
`Job` and `Lease` objects themselves: it sends a `Ticket` (watch root, folder, stem, version,
lease ETag, attempt, and the trigger's routing: engine and the checked prompt.json values), a
dict of strings and ints that pickles, JSON-encodes and logs safely (no secret in it). The worker
rebuilds the Job by listing the job's folder, rebuilds the Lease from the ticket, confirms the
lease is still ours with one conditional write, and runs the same `run_job` as a local watcher,
trusting the ticket's routing: it reads prompt.json and resolves the engine no second time.

On Modal the dispatcher records the spawned call's id in the lease after spawning (a
conditional write, so the lease's ETag moves past the ticket's); a poller may renew such a lease
for the call while it waits. The worker learns its own call id from Modal: a lease that names
that call at the ticket's attempt is still this ticket's claim (`Lease.renew` adopts it).

A ticket that arrives late is harmless: if the inputs changed (new version), the job finished,
or the lease was taken back (our ETag no longer matches), the worker writes nothing and returns.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any

from pydantic import ValidationError

from handlers.claims import Lease
from handlers.errors import DropreelError
from handlers.jobs import Job, discover
from handlers.layout import Marker
from handlers.lifecycle import RunOutcome, run_job
from handlers.prompt import PromptFile
from handlers.routing import Route
from handlers.runtime import Runtime
from handlers.storage import Storage

log = logging.getLogger(__name__)


class TicketRejected(DropreelError):
    """A ticket is malformed or meant for another watch root; it is dropped, never retried."""

    permanent = True
    http_status = 400


@dataclass(frozen=True)
class Ticket:
    """Everything a worker needs to run one claimed job version."""

    watch_root: str
    folder: str
    stem: str
    version: str
    lease_key: str
    lease_etag: str
    attempt: int
    engine: str
    prompt: str = ""  # the checked prompt.json values as JSON; "" for a job without one

    @property
    def job(self) -> str:
        return f"{self.folder}{self.stem}"

    def route(self) -> Route:
        """The trigger's routing, as it decided it."""
        try:
            prompt = PromptFile.model_validate_json(self.prompt) if self.prompt else None
        except ValidationError as err:
            raise TicketRejected(f"ticket field 'prompt' is not a prompt: {err}") from err
        return Route(self.engine, prompt)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Ticket:
        """Parse a ticket at the edge; raises TicketRejected naming what is wrong."""
        if not isinstance(data, dict):
            raise TicketRejected(f"a ticket must be a dict, not {type(data).__name__}")
        names = {f.name: f.type for f in fields(cls)}
        missing = sorted(set(names) - set(data))
        unknown = sorted(set(data) - set(names))
        if missing or unknown:
            raise TicketRejected(
                f"ticket fields missing {missing or '[]'}, unknown {unknown or '[]'}"
            )
        values: dict[str, Any] = {}
        for name in names:
            value = data[name]
            want = int if name == "attempt" else str
            if not isinstance(value, want) or isinstance(value, bool):
                raise TicketRejected(f"ticket field {name!r} must be {want.__name__}")
            values[name] = value
        if values["attempt"] < 1:
            raise TicketRejected("ticket field 'attempt' must be at least 1")
        return cls(**values)


def make_ticket(storage: Storage, job: Job, lease: Lease, routed: Route) -> Ticket:
    return Ticket(
        watch_root=storage.url,
        folder=job.folder,
        stem=job.stem,
        version=job.version,
        lease_key=lease.key,
        lease_etag=lease.etag,
        attempt=lease.attempt,
        engine=routed.engine,
        prompt=routed.prompt.model_dump_json(exclude_none=True) if routed.prompt else "",
    )


def find_job(rt: Runtime, ticket: Ticket) -> Job | None:
    """The ticket's job as the bucket shows it now (its folder's own LIST, never the subtree)."""
    settings = rt.settings
    listing = rt.storage.list_folder(ticket.folder)
    jobs = discover(
        listing.objects, listing.server_time, settings.settle_seconds, settings.lease_seconds
    )
    return next((j for j in jobs if j.folder == ticket.folder and j.stem == ticket.stem), None)


def run_ticket(rt: Runtime, ticket: Ticket, call_id: str = "") -> RunOutcome:
    """Run a ticket's job to its outcome. `call_id`: the platform call running it (Modal's
    FunctionCall id), which the lease may name since the dispatcher recorded it.

    Raises only transient errors (storage unreachable before the job started), which the caller
    may retry; everything else ends in a returned state.
    """
    if _root(ticket.watch_root) != _root(rt.storage.url):
        raise TicketRejected(
            f"ticket for {ticket.watch_root} reached a worker watching {rt.storage.url}: "
            "deploy the worker with the same DROPREEL_WATCH_ROOT as the trigger"
        )
    routed = ticket.route()
    job = find_job(rt, ticket)
    if job is None or job.version != ticket.version:
        log.info("%s: inputs changed or removed since the claim; skipping", ticket.job)
        return RunOutcome.STALE
    if job.marker(Marker.DONE) or job.marker(Marker.FAILED):
        log.info("%s: version %s already finished; skipping", ticket.job, ticket.version)
        return RunOutcome.STALE
    lease = Lease(
        rt.storage,
        ticket.lease_key,
        ticket.lease_etag,
        ticket.attempt,
        ticket.version,
        call=call_id,
    )
    return run_job(rt, job, lease, routed)  # its first act confirms the claim is still ours


def _root(url: str) -> str:
    return url.rstrip("/") + "/"
