"""Text-to-video and image-to-video longer than one clip: clip after clip, each continuing from
the last frame of the one before.

A video model makes clips of a bounded length (its `longest_seconds`, an optional engine
method; None: the engine's own checks decide). A longer `duration_seconds` is rendered
as clips of the longest length: the first from the request as it is, each next one as an
image-to-video clip of the same prompt, seed and settings conditioned on the last frame of the
clip before (whose copy, its first frame, is dropped). Each clip needs the one before, so this
is sequential by nature, in the job's one run: a crash renders the job again from the start.
An engine that cannot make image-to-video clips (Mochi) keeps its limit, and a longer request
is refused as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from config.kinds import JobKind
from gpu.engine import Engine, Progress, RenderPlan, RenderRequest
from gpu.registry import get_spec

VIDEO_KINDS = (JobKind.TEXT_TO_VIDEO, JobKind.IMAGE_TO_VIDEO)


@dataclass(frozen=True)
class Clips:
    """A request longer than one clip: the first clip's request and the length of each."""

    first: RenderRequest
    seconds_each: float
    total_seconds: float

    def frames_at(self, fps: float) -> int:
        """The whole video's frame count."""
        return round(self.total_seconds * float(fps))

    def describe(self, first: RenderPlan) -> dict[str, object]:
        """For status.json's settings: the whole length, and how it was made."""
        each, total = first.num_frames, self.frames_at(first.fps)
        return {
            "frames": total,
            "clips": 1 + -(-(total - each) // max(1, each - 1)),
            "clip_frames": each,
            "continued_from": "the last frame of the clip before",
        }


def plan_clips(engine_name: str, engine: Engine, request: RenderRequest) -> Clips | None:
    """The clips for a request past the engine's longest clip, or None (one render)."""
    longest_seconds = getattr(engine, "longest_seconds", None)
    asked = request.duration_seconds
    if longest_seconds is None or request.kind not in VIDEO_KINDS or not asked:
        return None
    longest = longest_seconds(request)
    if longest is None or asked <= longest:
        return None
    if JobKind.IMAGE_TO_VIDEO not in get_spec(engine_name).kinds:
        return None  # cannot continue a clip: its own limit applies (check_inputs says so)
    return Clips(replace(request, duration_seconds=longest), longest, asked)


def frames(engine: Engine, first: RenderPlan, clips: Clips, progress: Progress) -> Iterator:
    """Every frame of the whole video: the first plan's clip, then continuations until the
    asked length (at the first plan's frame rate)."""
    total = clips.frames_at(first.fps)
    made = 0
    plan = first

    def counted(done: int, _total: int) -> None:
        progress(min(made + done, total), total)

    while True:
        last = None
        skip = 0 if made == 0 else 1  # a continuation's first frame is the one it continues
        for index, frame in enumerate(engine.render(plan, counted)):
            if index < skip:
                continue
            if made >= total:
                return
            last = frame
            made += 1
            yield frame
        if made >= total or last is None:
            return
        seconds = min(clips.seconds_each, (total - made + 1) / float(first.fps))
        nxt = replace(
            plan.request,
            kind=JobKind.IMAGE_TO_VIDEO.value,
            image=Image.fromarray(np.asarray(last)),
            duration_seconds=seconds,
            seed=first.seed,
        )
        plan = engine.check_inputs(nxt)
