"""What runs inside the Modal containers: a poller tick, the webhook app, an engine worker.

`infra/modal/app.py` only declares images, volume, secrets and functions; each function body is
one call into here. Nothing in this module imports modal, so it runs (and is tested) anywhere.
Settings inside a container come from the environment: the deployed settings Secret plus the
named Secrets (storage keys, Slack token, webhook secrets).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import Any

from config.costs import parse_gpu, usd_per_hour
from config.settings import Settings
from gpu.registry import adopt, engine_class, get_spec, load_engine
from handlers.calls import CallRegistry
from handlers.claims import new_worker_id
from handlers.errors import DropreelError
from handlers.segment_ticket import run_segment_ticket
from handlers.ticket import Ticket, TicketRejected, run_ticket
from infra.modal.dispatch import DispatchObserver, Launch, ModalDispatcher
from infra.modal.plan import EnginePlan
from infra.modal.segments import ModalSegments, Spawn
from infra.wiring import build_runtime
from triggers.poller import tick

log = logging.getLogger("dropreel.modal")

_tick_lock = threading.Lock()
HEAVY_MODULES = ("torch", "diffusers", "transformers", "accelerate")


def configure_logging() -> None:
    """INFO lines to stderr, which Modal keeps (`modal app logs dropreel`)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger("botocore").setLevel(logging.WARNING)


def launcher(engine_classes: Mapping[str, Any], mode: str) -> Launch:
    """How a trigger reaches an engine class: `spawn` (returns at once) or `local` (in-process,
    the class's `.local()`, for tests and `modal run` debugging)."""
    if mode == "spawn":

        def spawn(engine: str, ticket: dict[str, Any]) -> str:
            return engine_classes[engine]().run.spawn(ticket).object_id

        return spawn

    instances: dict[str, Any] = {}

    def local(engine: str, ticket: dict[str, Any]) -> None:
        if engine not in instances:
            instances[engine] = engine_classes[engine]()
        instances[engine].run.local(ticket)

    return local


def dispatcher_for(
    settings: Settings,
    engine_classes: Mapping[str, Any],
    on_dispatch: DispatchObserver | None = None,
    calls: CallRegistry | None = None,
) -> ModalDispatcher:
    """`calls`: Modal's answer about spawned calls (`infra/modal/calls.py`), so an expired
    lease whose call still waits in Modal's queue is kept rather than taken back."""
    rt = build_runtime(settings)
    rt.calls = calls
    launch = launcher(engine_classes, settings.modal_dispatch)
    return ModalDispatcher(rt, launch, engine_classes, on_dispatch)


def poll_once(
    engine_classes: Mapping[str, Any], calls: CallRegistry | None = None
) -> dict[str, Any]:
    """One poller tick; a second tick in the same container while one runs is skipped."""
    if not _tick_lock.acquire(blocking=False):
        log.warning("a tick is still running; skipping this one")
        return {"skipped": True}
    try:
        configure_logging()
        settings = Settings()
        sent: list[dict[str, Any]] = []  # this tick's, for its summary
        errors: list[str] = []

        def record(ticket: Ticket, error: str | None) -> None:
            if error is None:
                sent.append(ticket.to_dict())
            else:
                errors.append(error)

        dispatcher = dispatcher_for(settings, engine_classes, record, calls)
        report = tick(dispatcher.rt, dispatcher)
        summary = {
            "skipped": False,
            "jobs": report.jobs,
            "states": {str(k): v for k, v in sorted(report.states.items())},
            "claimed": report.claimed,
            "taken_back": report.taken_back,
            "failed": report.failed,
            "dispatched": sent,
            "dispatch_errors": errors,
            "requests": report.requests,
        }
        log.info(
            "tick: %d jobs, dispatched %d, failed %d",
            report.jobs,
            len(sent),
            len(report.failed),
        )
        return summary
    finally:
        _tick_lock.release()


def webhook_app(engine_classes: Mapping[str, Any], calls: CallRegistry | None = None) -> Any:
    """The FastAPI app of `triggers.webhook`, dispatching claimed jobs to the engine classes."""
    from triggers.webhook import create_app

    configure_logging()
    settings = Settings()
    dispatcher = dispatcher_for(settings, engine_classes, calls=calls)
    return create_app(settings, dispatcher.rt, dispatcher)


def preload(plan: EnginePlan) -> None:
    """Before the memory snapshot (no GPU yet): import the engine's module, and on the GPU
    image its heavy libraries; an engine that can stage its default checkpoint in host memory
    (`warm(stage_on_cpu=True)`, the diffusers engines) does so, built for the device the class
    will have. Restored containers skip all of it; `EngineWorker` moves the checkpoint onto the
    GPU. Anything that fails here is logged and left to the worker, which reports it to jobs."""
    if plan.image == "gpu":
        for name in HEAVY_MODULES:
            with contextlib.suppress(ImportError):
                importlib.import_module(name)
    spec = get_spec(plan.engine)
    try:
        cls = engine_class(spec)
        if not hasattr(cls, "warm"):
            return
        engine = cls(device="cuda") if plan.gpu else cls()
        engine.load()
        log.info("%s", engine.warm(stage_on_cpu=True))
        adopt(plan.engine, engine)
    except Exception as err:  # the load step reports it to the job in plain words
        log.error("could not preload engine %s (%s): %s", plan.engine, spec.target, err)


def gpu_in_use(plan: EnginePlan) -> str | None:
    """Which of the class's GPU types this container got (Modal takes the first free one of
    its list), from the CUDA device's name ('NVIDIA A100-SXM4-80GB' is A100-80GB); None for a
    class with one type, or when it cannot tell."""
    if not plan.gpu_fallbacks:
        return None
    try:
        import torch

        if not torch.cuda.is_available():
            return None
        words = set(re.split(r"[\s_-]+", torch.cuda.get_device_name(0).upper()))
    except Exception:  # no torch, no driver: bill the first choice
        return None
    return next((g for g in plan.gpus if set(parse_gpu(g)[0].split("-")) <= words), None)


class EngineWorker:
    """One engine in one container: loaded once, then runs tickets one at a time.

    Built in `@modal.enter(snap=False)`, so after a memory snapshot is restored: each container
    names itself here (Modal's task id, else its host name) rather than inheriting the id the
    snapshot was taken with."""

    def __init__(
        self, plan: EnginePlan, settings: Settings | None = None, spawn_segment: Spawn | None = None
    ) -> None:
        """`spawn_segment`: how this class spawns a segment call (its `render_segment.spawn`),
        so a long talking head's segments each get a container of their own."""
        started = time.monotonic()
        configure_logging()
        self.worker_id = new_worker_id(os.environ.get("MODAL_TASK_ID"))
        self.plan = plan
        self.rt = build_runtime(settings or Settings())
        if spawn_segment is not None:
            self.rt.segments = ModalSegments(spawn_segment, self.rt.settings.parallel_gpus)
        self.rt.gpu = plan.hardware
        self.rt.usd_per_hour = plan.usd_per_hour
        self.load_error: str | None = None
        try:
            engine = load_engine(plan.engine)
            if hasattr(engine, "warm"):  # the default checkpoint, before the first job
                log.info("%s", engine.warm())
        except Exception as err:  # run_job loads again and fails each job with this message
            self.load_error = f"{type(err).__name__}: {err}"
            log.error("engine %s did not load: %s", plan.engine, self.load_error)
        got = gpu_in_use(plan)
        if got is not None and got != plan.gpu:  # Modal gave a fallback GPU: bill that one
            settings = self.rt.settings
            self.rt.gpu = got
            self.rt.usd_per_hour = usd_per_hour(got, plan.cpu, settings.gpu_prices, plan.memory)
        self.rt.load_seconds = round(time.monotonic() - started, 3)  # billed to the first job

    def run(self, ticket: dict[str, Any], call_id: str | None = None) -> dict[str, Any]:
        """Run one ticket. `call_id`: this Modal call's id (`modal.current_function_call_id()`),
        which the dispatcher recorded in the lease. Raises only transient errors (the call then
        ends, the lease expires and a poller takes the job back); a permanent problem is
        returned as `rejected`, and a job failure is in status.json and Slack."""
        try:
            parsed = Ticket.from_dict(ticket)
        except TicketRejected as err:
            log.error("dropping a malformed ticket: %s", err)
            return {"result": "rejected", "error": str(err)}
        if parsed.engine != self.plan.engine:
            error = f"ticket for engine {parsed.engine} reached {self.plan.engine}'s class"
            log.error("%s; dropping it", error)
            return {"job": parsed.job, "result": "rejected", "error": error}
        try:
            result = run_ticket(self.rt, parsed, call_id or "")
        except DropreelError as err:
            if not err.permanent:
                raise
            log.error("%s: %s", parsed.job, err)
            return {"job": parsed.job, "result": "rejected", "error": str(err)}
        log.info("%s: %s", parsed.job, result)
        return {"job": parsed.job, "result": result.value, "engine": self.plan.engine}

    def render_segment(self, ticket: dict[str, Any]) -> dict[str, Any]:
        """Render one segment of a parallel render; raises its failure, which the coordinator
        reads from the call (`FunctionCall.get`) and answers by handing the segment out again."""
        return run_segment_ticket(self.rt, ticket)
