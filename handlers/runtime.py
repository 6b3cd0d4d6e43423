"""What a worker needs, in one object that every trigger and dispatcher passes along.

Built from settings in one place (`infra/wiring.py`). It holds no record of what it did: people
learn that from status.json and the notifier, and callers that want to watch (progress bars,
tests) pass the observer callbacks below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from config.settings import Settings
from gpu.engine import Engine
from gpu.registry import load_engine
from handlers.calls import CallRegistry
from handlers.jobs import Job
from handlers.notify import CallbackSender, Notifier
from handlers.storage import Storage

if TYPE_CHECKING:
    from handlers.segments import SegmentRunner

FrameObserver = Callable[[Job, int, int], None]
StartObserver = Callable[[Job], None]


@dataclass
class Runtime:
    """Where the bucket is, the settings, who to tell, and how to load an engine."""

    storage: Storage
    settings: Settings
    notifier: Notifier
    engine_loader: Callable[[str], Engine] = load_engine
    on_start: StartObserver | None = None  # called as a worker starts on a job version
    on_frame: FrameObserver | None = None  # called as frames are rendered (done, total)
    gpu: str | None = None  # hardware this worker bills for ("L40S", "cpu"); None: not metered
    usd_per_hour: float | None = None  # its estimated price (config/costs.py)
    calls: CallRegistry | None = None  # where dispatched calls can be asked about (Modal)
    load_seconds: float = 0.0  # the container's load time, not yet billed to a job
    callbacks: CallbackSender | None = None  # signed callbacks (None: no callbacks are sent)
    segments: SegmentRunner | None = None  # where long talking heads' segments render

    def take_load_seconds(self) -> float:
        """The container's load time for the job being metered: its first job carries it."""
        seconds, self.load_seconds = self.load_seconds, 0.0
        return seconds
