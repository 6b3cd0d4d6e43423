"""Segments of a parallel render on Modal: each its own call (`.spawn`) on the engine's class.

The coordinator (the job's run, on one container of the class) hands each segment out as a
segment ticket (handlers/segment_ticket.py) to `render_segment`, a method of the same class,
so Modal starts as many containers as the class's `max_containers` and the workspace's GPU
limit allow. `FunctionCall.get(timeout=0)` tells a finished call from one still queued or
running (Python's own TimeoutError), and a call that died raises its failure, which the
coordinator answers by handing the segment out once more. Nothing here imports modal: the app
passes the spawn function in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from gpu.engine import Progress
from handlers.routing import Route
from handlers.runtime import Runtime
from handlers.segment_ticket import segment_ticket
from handlers.segments import SegmentResult, SegmentTask
from handlers.ticket import make_ticket

Spawn = Callable[[dict[str, Any]], Any]  # a segment ticket -> a modal.FunctionCall


class ModalSegments:
    """The `SegmentRunner` port on Modal; at most `limit` calls out from this container."""

    shares_files = False  # its workers download the job's inputs themselves

    def __init__(self, spawn: Spawn, limit: int) -> None:
        self.spawn = spawn
        self.slots = threading.BoundedSemaphore(limit)

    def submit(self, rt: Runtime, task: SegmentTask, progress: Progress) -> SpawnedSegment:
        lease_stub = _LeaseStub(task)
        ticket = make_ticket(rt.storage, task.job, lease_stub, Route(task.engine, task.prompt))
        self.slots.acquire()
        try:
            call = self.spawn(segment_ticket(ticket, task))
        except BaseException:
            self.slots.release()
            raise
        return SpawnedSegment(call, self.slots)


class SpawnedSegment:
    """A spawned segment call, asked without waiting (`get(timeout=0)`)."""

    def __init__(self, call: Any, slots: threading.BoundedSemaphore) -> None:
        self.call, self.slots = call, slots
        self._value: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._over = False

    def done(self) -> bool:
        if self._over:
            return True
        try:
            self._value = self.call.get(timeout=0)
        except TimeoutError:  # Python's own: queued, starting or running
            return False
        except BaseException as err:  # died, timed out, cancelled: its failure
            self._error = err
        self._finish()
        return True

    def result(self) -> SegmentResult:
        if self._error is not None:
            raise self._error
        value = self._value or {}
        return SegmentResult(value["index"], value["frames"], value["seconds"])

    def cancel(self) -> bool:
        if self._over:
            return False
        self.call.cancel()
        self._finish()
        return True

    def _finish(self) -> None:
        if not self._over:
            self._over = True
            self.slots.release()


class _LeaseStub:
    """What `make_ticket` reads of a lease: a segment ticket names no lease of its own."""

    def __init__(self, task: SegmentTask) -> None:
        self.key, self.etag, self.attempt = "", "", task.attempt
