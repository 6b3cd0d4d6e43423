"""Dispatch to Modal: each claimed job goes to its engine's GPU class as a plain-data ticket.

The trigger (poller tick or webhook request) claims a job, routes it (`handlers.routing`:
prompt.json checked, engine picked), and calls `launch(engine, ticket_dict)`, which on Modal is
`EngineClass().run.spawn(ticket)`: it returns at once with the call's id, which is recorded in
the lease (`Lease.record_call`), and the GPU container runs `handlers.ticket.run_ticket`, the
same lifecycle as a local watcher, trusting the ticket's routing. Until the container starts
nobody heartbeats the lease; when it expires, the reconciler asks Modal about the recorded call
(`handlers/calls.py`) and keeps the lease while the call waits or runs. A job that cannot be
routed (bad prompt.json, an engine that is not deployed) fails here, without starting a
container. This module does not import modal; `infra/modal/app.py`
hands it the launcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from gpu.errors import EngineError, EngineNotFound
from handlers.claims import Lease
from handlers.errors import DropreelError, StorageError, plain_words
from handlers.jobs import Job
from handlers.lifecycle import fail_unstarted
from handlers.routing import route
from handlers.runtime import Runtime
from handlers.ticket import Ticket, make_ticket

log = logging.getLogger(__name__)

Launch = Callable[[str, dict[str, Any]], str | None]
"""Hands a ticket to an engine; returns the platform's call id, or None (run in-process)."""
DispatchObserver = Callable[[Ticket, str | None], None]
"""Called with each ticket and None once it is sent, or the error that kept it back."""


class ModalDispatcher:
    """Sends each claimed job to the Modal class of its engine and returns without waiting."""

    def __init__(
        self,
        rt: Runtime,
        launch: Launch,
        engines: Collection[str],
        on_dispatch: DispatchObserver | None = None,
    ) -> None:
        self.rt = rt
        self.launch = launch
        self.engines = set(engines)
        self.on_dispatch = on_dispatch

    def dispatch(self, job: Job, lease: Lease) -> None:
        settings = self.rt.settings
        try:
            routed = route(self.rt.storage, job, settings)
        except EngineNotFound:  # the configured default is no engine at all: not deployed
            self._not_deployed(job, lease, settings.engine_for(job.kind))
            return
        except (DropreelError, EngineError) as err:
            if err.permanent:
                fail_unstarted(self.rt, job, lease, plain_words(err))
            else:  # the lease expires and the next tick takes the job back
                log.error("could not route %s, the next tick retries it: %s", job.name, err)
            return
        if routed.engine not in self.engines:
            self._not_deployed(job, lease, routed.engine)
            return
        ticket = make_ticket(self.rt.storage, job, lease, routed)
        error = None
        try:
            call_id = self.launch(routed.engine, ticket.to_dict())
        except Exception as err:  # the lease expires and the next tick takes the job back
            error = f"could not hand {job.name} to engine {routed.engine}: "
            error += f"{type(err).__name__}: {err}"
            log.error("%s; the next tick retries it once the lease expires", error)
        else:
            self._record(job, lease, call_id)
        if self.on_dispatch is not None:
            self.on_dispatch(ticket, error)

    def _record(self, job: Job, lease: Lease, call_id: str | None) -> None:
        """Name the call in the lease, so that waiting in Modal's queue is never taken for a
        dead worker. If this write fails (storage trouble), the lease expires as before."""
        if not call_id:
            return
        try:
            lease.record_call(call_id)
        except StorageError as err:
            log.warning("%s: could not record call %s in its lease: %s", job.name, call_id, err)

    def _not_deployed(self, job: Job, lease: Lease, engine: str) -> None:
        deployed = ", ".join(sorted(self.engines))
        error = (
            f"engine {engine!r} is not deployed on Modal (deployed: {deployed}); name a deployed "
            "engine in prompt.json or DROPREEL_ENGINE_*, or register it and run `dropreel deploy`"
        )
        fail_unstarted(self.rt, job, lease, error, engine=engine)

    def wait(self) -> None:
        """Nothing to wait for: the engine classes run on their own containers."""
