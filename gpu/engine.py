"""The engine interface every engine implements, preview and GPU alike.

An engine loads once per process (`load`), checks a request before any compute
(`check_inputs` -> its own typed `RenderPlan`, raising `InputError`), then yields RGB frames
(`render`). Inputs reach engines already decoded and checked (the lifecycle does it once, under
the configured limits): engines never open the job's files. Encoding and muxing are not the
engine's business either.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

    from gpu.media import AudioInfo, VideoInfo

FrameRate = int | Fraction
"""Frames per second: an int, or a Fraction for a source video's rate (30000/1001)."""

Progress = Callable[[int, int], None]
"""Called as progress(done, total) while rendering; may raise to stop the render."""


@dataclass(frozen=True)
class RenderRequest:
    """What a job asks for: its kind, its decoded inputs, and the prompt.json values if any.

    `image` is 8-bit RGB with its EXIF orientation applied; `audio` holds the probed facts
    (length, rate, level) and `audio.samples(rate)`, the one audio loader; `video` (dubbing) the
    probed source video and its frame loader. A two-speaker talking head (gpu/two_speakers.py)
    has `voices`, each speaker's own recording; `audio` is then their mix, the video's sound,
    and `speakers` the speakers' boxes from prompt.json, if any.
    """

    kind: str
    image: Image.Image | None = None
    video: VideoInfo | None = None
    audio: AudioInfo | None = None
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
    voices: tuple[AudioInfo, AudioInfo] | None = None
    speakers: tuple[tuple[int, int, int, int], ...] | None = None  # [x0, y0, x1, y1] per speaker
    speaking: str | None = None  # "turns" or "together" (gpu/two_speakers.py)
    segment: int | None = None  # a parallel render's segment number (its audio is that stretch)


@dataclass(kw_only=True)
class RenderPlan:
    """A request resolved against an engine: exact size, frame count, seed, adjustments.

    Each engine family subclasses it with its own typed fields. `describe()` is what status.json
    and the notification show as `settings`: output only, never read back as input.
    """

    request: RenderRequest
    width: int
    height: int
    fps: FrameRate
    num_frames: int
    seed: int
    adjustments: list[str] = field(default_factory=list)

    @property
    def duration_seconds(self) -> float:
        return float(self.num_frames / self.fps)

    def describe(self) -> dict[str, Any]:
        """The settings to show; a family puts its own first: `{..., **super().describe()}`."""
        return {
            "width": self.width,
            "height": self.height,
            "fps": plain_rate(self.fps),
            "frames": self.num_frames,
            "seed": self.seed,
        }


def plain_rate(fps: FrameRate) -> int | float:
    """A frame rate as status.json shows it: 25, or 29.97 for 30000/1001."""
    return int(fps) if Fraction(fps).denominator == 1 else round(float(fps), 3)


class Engine(Protocol):
    """The shape of an engine; see gpu/preview.py for the smallest complete one."""

    name: str
    preview: bool

    def load(self) -> None: ...

    def check_inputs(self, request: RenderRequest) -> RenderPlan: ...

    def render(
        self, plan: RenderPlan, progress: Progress | None = None
    ) -> Iterator[np.ndarray]: ...
