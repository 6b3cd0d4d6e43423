"""The engine interface every engine implements, preview and GPU alike.

An engine loads once per process (`load`), checks a request before any compute
(`check_inputs` -> `RenderPlan`, raising `InputError`), then yields RGB frames (`render`).
Media decoding, encoding and muxing are not the engine's business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Progress = Callable[[int, int], None]
"""Called as progress(done, total) while rendering; may raise to stop the render."""


@dataclass(frozen=True)
class RenderRequest:
    """What a job asks for: its kind, its input files, and the prompt.json values if any."""

    kind: str
    image: Path | None = None
    audio: Path | None = None
    prompt: str | None = None
    negative_prompt: str | None = None
    profile: str | None = None
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    seed: int | None = None
    steps: int | None = None
    guidance: float | None = None
    audio_seconds: float | None = None


@dataclass
class RenderPlan:
    """A request resolved against an engine: exact size, frame count, settings, adjustments."""

    request: RenderRequest
    width: int
    height: int
    fps: int
    num_frames: int
    seed: int
    settings: dict[str, Any] = field(default_factory=dict)
    adjustments: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def duration_seconds(self) -> float:
        return self.num_frames / self.fps


class Engine(Protocol):
    """The shape of an engine; see gpu/preview.py for the smallest complete one."""

    name: str
    preview: bool

    def load(self) -> None: ...

    def check_inputs(self, request: RenderRequest) -> RenderPlan: ...

    def render(
        self, plan: RenderPlan, progress: Progress | None = None
    ) -> Iterator[np.ndarray]: ...
