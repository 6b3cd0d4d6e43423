"""Dispatch to Modal: each claimed job goes to its engine's GPU class as a plain-data ticket.

The trigger (poller tick or webhook request) claims a job, picks the engine exactly as the
lifecycle will (prompt.json `engine`, else the configured default for the job kind), and calls
`launch(engine, ticket_dict)`, which on Modal is `EngineClass().run.spawn(ticket)`: it returns
at once, and the GPU container runs `handlers.ticket.run_ticket`, the same lifecycle as a local
watcher. This module does not import modal; `infra/modal/app.py` hands it the launcher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from typing import Any

from gpu.errors import EngineError
from handlers.claims import Lease
from handlers.errors import InputRejected, StorageError
from handlers.jobs import Job
from handlers.lifecycle import Runtime, fail_job, resolve_engine
from handlers.prompt import PromptFile, parse_prompt
from handlers.status import JobStatus
from handlers.ticket import Ticket, make_ticket

log = logging.getLogger(__name__)

Launch = Callable[[str, dict[str, Any]], object]


def route(rt: Runtime, job: Job) -> str:
    """The engine that will render `job`, decided the way `run_job` decides it.

    A prompt.json that cannot be read or parsed routes to the kind's default engine, whose
    worker then fails the job with the parse error in plain words.
    """
    prompt: PromptFile | None = None
    if job.prompt is not None:
        try:
            data = rt.storage.get(job.prompt.key)
            prompt = parse_prompt(
                data, job.prompt.key.rpartition("/")[2], rt.settings.max_prompt_bytes
            )
        except (InputRejected, StorageError):
            prompt = None
    try:
        return resolve_engine(job, prompt, rt.settings)
    except (InputRejected, EngineError):
        return rt.settings.engine_for(job.kind)


class ModalDispatcher:
    """Sends each claimed job to the Modal class of its engine and returns without waiting."""

    def __init__(self, rt: Runtime, launch: Launch, engines: Collection[str]) -> None:
        self.rt = rt
        self.launch = launch
        self.engines = set(engines)
        self.sent: list[Ticket] = []
        self.errors: list[str] = []

    def dispatch(self, job: Job, lease: Lease) -> None:
        engine = route(self.rt, job)
        if engine not in self.engines:
            self._fail(job, lease, engine)
            return
        ticket = make_ticket(self.rt.storage, job, lease, engine)
        try:
            self.launch(engine, ticket.to_dict())
        except Exception as err:  # the lease expires and the next tick takes the job back
            message = f"could not hand {job.name} to engine {engine}: {type(err).__name__}: {err}"
            log.error("%s; the next tick retries it once the lease expires", message)
            self.errors.append(message)
            return
        self.sent.append(ticket)

    def _fail(self, job: Job, lease: Lease, engine: str) -> None:
        deployed = ", ".join(sorted(self.engines))
        status = JobStatus(
            state="failed",
            job=job.name,
            kind=job.kind,
            version=job.version,
            attempt=lease.attempt,
            max_attempts=self.rt.settings.max_attempts,
            inputs=[o.key for o in job.inputs],
            engine=engine,
            error=f"engine {engine!r} is not deployed on Modal (deployed: {deployed}); name "
            "a deployed engine in prompt.json or DROPREEL_ENGINE_*, or register it and run "
            "`dropreel deploy`",
        )
        fail_job(self.rt, job, status)

    def wait(self) -> None:
        """Nothing to wait for: the engine classes run on their own containers."""
