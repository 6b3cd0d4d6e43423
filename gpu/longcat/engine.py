"""The `longcat-avatar` engine: a portrait plus a voice -> a lip-synced video of any length.

load() reads the weights of the default profile's model version from disk once per process
(never the network); check_inputs() turns a request into an exact plan (a 480p bucket by the
portrait's aspect, the version's frame rate, as many frames as the audio lasts, the number of
93-frame segments) and refuses what cannot work before any compute; render() yields frames
segment by segment, reporting progress per denoising step. The lifecycle muxes the original
recording under them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gpu.engine import Progress, RenderPlan, RenderRequest
from gpu.errors import InputError
from gpu.longcat.profiles import PROFILES, Profile
from gpu.talking_limits import check_longest, pick_profile

log = logging.getLogger(__name__)

NAME = "longcat-avatar"
MODEL = "LongCat-Video-Avatar"


@dataclass(kw_only=True)
class LongCatPlan(RenderPlan):
    """One render: the profile and its recipe (the portrait and voice are the request's)."""

    profile: Profile
    steps: int
    text_guidance: float
    audio_guidance: float
    segments: int

    def describe(self) -> dict[str, Any]:
        p = self.profile
        return {
            "engine": NAME,
            "model": f"{MODEL} {p.version}" + (" INT8" if p.int8 else ""),
            "profile": p.name,
            "segments": self.segments,
            "segment_frames": p.segment_frames,
            "conditioning_frames": p.cond_frames,
            "steps": self.steps,
            "text_guidance": self.text_guidance,
            "audio_guidance": self.audio_guidance,
            "lora": "dmd" if p.distill else None,
            "offload": p.offload,
            **super().describe(),
        }


class LongCatAvatarEngine:
    """LongCat-Video-Avatar on diffusers and transformers; see the package docstring."""

    name = NAME
    preview = False

    def __init__(
        self,
        weights_dir: Path | str | None = None,
        profile: str | None = None,
        profiles: dict[str, Profile] | None = None,
        device: str | None = None,
    ) -> None:
        from config.settings import get_settings

        settings = get_settings()
        self.weights_dir = Path(weights_dir or settings.weights_dir).expanduser()
        self.profiles = profiles or PROFILES
        # talking_head_profile is shared with InfiniteTalk; its "balanced" is not ours.
        wanted = profile or settings.talking_head_profile
        self.default_profile = wanted if wanted in self.profiles else "fast"
        if profile and profile not in self.profiles:
            raise InputError(f"profile {profile!r} is not one of {', '.join(self.profiles)}")
        self.device_name = device or settings.talking_head_device
        self.components = None

    def load(self) -> None:
        self._load(self.profiles[self.default_profile])

    def _load(self, profile: Profile) -> None:
        """The components of the profile's model version (another version's are let go first)."""
        import torch

        from gpu.longcat.pipeline import Components

        current = self.components
        if current is not None and current.variant == (
            profile.version,
            profile.int8,
            profile.offload,
        ):
            return
        self.components = None
        device = torch.device(self.device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        self.components = Components.load(self.weights_dir, profile, device, dtype)
        log.info("longcat-avatar loaded on %s: %s", device, "; ".join(self.components.notes))

    # --- check --------------------------------------------------------------------------------

    def check_inputs(self, request: RenderRequest) -> LongCatPlan:
        if request.kind != "talking_head":
            raise InputError(f"the {NAME} engine makes talking_head videos, not {request.kind}")
        image, audio = request.image, request.audio
        if image is None or audio is None or not audio.seconds:
            raise InputError("a talking_head job needs one image and one non-empty audio file")
        profile = pick_profile(request.profile, self.default_profile, self.profiles)
        check_longest(audio, profile, self.profiles, f"{NAME} video")
        seconds = audio.seconds
        if seconds < profile.min_seconds:
            raise InputError(
                f"{audio.name} is {seconds * 1000:.0f} ms long; a {NAME} video needs at least "
                f"{profile.min_seconds:g} s of speech"
            )
        width, height, adjustments = self._size(request, profile)
        fps = profile.fps
        frames = int(seconds * fps)
        if request.fps and request.fps != fps:
            adjustments.append(
                f"fps {request.fps} ignored: {MODEL} {profile.version} videos are {fps} fps"
            )
        if request.duration_seconds:
            adjustments.append("duration_seconds ignored: the video is as long as the audio")
        steps, text_guidance = profile.steps, profile.text_guidance
        if profile.distill and (request.steps or request.guidance is not None):
            adjustments.append(
                f"steps/guidance ignored: the {profile.name} profile's LoRA is distilled for "
                f"{profile.steps} steps at guidance 1"
            )
        else:
            steps = request.steps or steps
            text_guidance = text_guidance if request.guidance is None else request.guidance
        return LongCatPlan(
            request=request,
            width=width,
            height=height,
            fps=fps,
            num_frames=frames,
            seed=request.seed if request.seed is not None else 42,
            adjustments=adjustments,
            profile=profile,
            steps=steps,
            text_guidance=text_guidance,
            audio_guidance=profile.audio_guidance,
            segments=profile.segments(frames),
        )

    @staticmethod
    def _size(request: RenderRequest, profile: Profile) -> tuple[int, int, list[str]]:
        """(width, height, adjustments): the bucket nearest the image's aspect, or the one asked."""
        image = request.image
        sizes = profile.sizes()
        if request.width or request.height:
            asked = (request.width, request.height)
            if asked not in sizes:
                shown = f"{request.width or '?'}x{request.height or '?'}"
                raise InputError(
                    f"{NAME} cannot render {shown}: it renders the reference's 480p sizes "
                    f"({', '.join(f'{w}x{h}' for w, h in sizes)}); set width and height to one "
                    "of them, or leave both out to follow the image's aspect"
                )
            width, height = asked
        else:
            width, height = profile.bucket(image.width, image.height)
        adjustments = []
        if (image.width, image.height) != (width, height):
            adjustments.append(
                f"image {image.width}x{image.height} resized and centre-cropped to {width}x{height}"
            )
        return width, height, adjustments

    # --- render -------------------------------------------------------------------------------

    def render(self, plan: LongCatPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        yield from self.render_traced(plan, progress)

    def render_traced(
        self, plan: LongCatPlan, progress: Progress | None = None, trace: list | None = None
    ) -> Iterator[np.ndarray]:
        """render(), recording what each segment was conditioned on into `trace`."""
        from gpu.longcat.audio import speech_features
        from gpu.longcat.pipeline import DEFAULT_PROMPT, NEGATIVE_PROMPT, Job, render_frames

        profile = plan.profile
        self._load(profile)
        request = plan.request
        rendered = profile.segments(plan.num_frames) * profile.new_frames + profile.cond_frames
        pad = max(0.0, rendered / profile.fps - request.audio.seconds)
        features = speech_features(
            request.audio,
            self.components.audio,
            profile.fps,
            profile.audio_stride,
            plan.seed,
            pad_seconds=pad,
        )
        job = Job(
            image=request.image,
            features=features,
            width=plan.width,
            height=plan.height,
            frames=plan.num_frames,
            prompt=request.prompt or DEFAULT_PROMPT,
            negative_prompt=request.negative_prompt or NEGATIVE_PROMPT,
            seed=plan.seed,
            profile=profile,
            steps=plan.steps,
            text_guidance=plan.text_guidance,
            audio_guidance=plan.audio_guidance,
        )
        yield from render_frames(self.components, job, progress, trace)


def scaled_profiles(scale: float, **changes) -> dict[str, Profile]:
    """The profiles with every bucket scaled (sides kept multiples of 16): for tests and benches."""

    def snap(v: int) -> int:
        return max(16, int(v * scale) // 16 * 16)

    return {
        name: replace(
            p, buckets={r: (snap(h), snap(w)) for r, (h, w) in p.buckets.items()}, **changes
        )
        for name, p in PROFILES.items()
    }
