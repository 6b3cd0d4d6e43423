"""The `infinitetalk` engine: a face image (or a video: dubbing) plus a voice -> a lip-synced video.

load() reads the weights from disk once per process (never the network); check_inputs() turns a
request into an exact plan (480p or 720p bucket, 25 fps, 4n+1 frames not outlasting the audio,
one clip or a stream of clips) and refuses what cannot work before any compute; render() yields
frames clip by clip. The lifecycle muxes the original recording under them. A dubbing job runs
the reference's video mode: its length follows the audio (`gpu/dubbing.py`), its size the
video's bucket, at 25 fps like every InfiniteTalk video. A two-speaker job (one portrait, two
voices: `gpu/two_speakers.py`) runs the multi-person weights, each voice routed to its
speaker's part of the picture.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gpu.dubbing import length_adjustments, source_index
from gpu.engine import Progress, RenderPlan, RenderRequest
from gpu.errors import InputError
from gpu.infinitetalk.profiles import PROFILES, Profile, with_fast_lora
from gpu.talking_limits import check_longest, pick_profile
from gpu.two_speakers import DEFAULT_SPEAKING, Box, Speaking, speaker_boxes

log = logging.getLogger(__name__)

NAME = "infinitetalk"
MODEL = "InfiniteTalk (single) on Wan2.1-I2V-14B-480P"
MODEL_MULTI = "InfiniteTalk (multi) on Wan2.1-I2V-14B-480P"
FPS = 25
MIN_FRAMES = 5  # 0.2 s: one latent frame past the first


@dataclass(kw_only=True)
class TalkingHeadPlan(RenderPlan):
    """One talking-head render: the profile and its recipe (the face and voice are the request's)."""

    profile: Profile
    steps: int
    text_guidance: float
    clips: int
    reanchor_every: int = 0  # restart from the portrait (or source frame) every N clips; 0: never
    speakers: tuple[Box, Box] | None = None  # two speakers: their boxes in image pixels
    speaking: Speaking | None = None  # two speakers: turns or together
    speed: list[str] = field(default_factory=list)  # what loading applied (fp8, attention, ...)

    def describe(self) -> dict[str, Any]:
        profile = self.profile
        two = {}
        if self.speakers is not None:
            two = {"speakers": [list(b) for b in self.speakers], "speaking": self.speaking}
        return {
            "engine": NAME,
            "model": MODEL if self.speakers is None else MODEL_MULTI,
            **two,
            "profile": profile.name,
            "mode": "clip" if self.clips == 1 else "streaming",
            "source": "video" if self.request.video is not None else "image",
            "clips": self.clips,
            "steps": self.steps,
            "shift": profile.shift,
            "text_guidance": self.text_guidance,
            "audio_guidance": profile.audio_guidance,
            "lora": profile.lora,
            "teacache": profile.teacache,
            "color_match": profile.color_match,
            "reanchor_every_clips": self.reanchor_every,
            "speed": self.speed,
            **super().describe(),
        }


class InfiniteTalkEngine:
    """InfiniteTalk (Wan2.1-I2V-14B + audio adapter) on diffusers; see the package docstring."""

    name = NAME
    preview = False

    def __init__(
        self,
        weights_dir: Path | str | None = None,
        profile: str | None = None,
        profiles: dict[str, Profile] | None = None,
        device: str | None = None,
        fp8: bool | None = None,
        fast_lora: str | None = None,
        compile: bool | None = None,
        reanchor_seconds: float | None = None,
    ) -> None:
        from config.settings import get_settings

        settings = get_settings()
        self.weights_dir = Path(weights_dir or settings.weights_dir).expanduser()
        lora_choice = fast_lora or settings.talking_head_fast_lora
        base = profiles or PROFILES
        self.profiles = {
            name: with_fast_lora(p, lora_choice) if p.lora else p for name, p in base.items()
        }
        self.default_profile = profile or settings.talking_head_profile
        if self.default_profile not in self.profiles:
            raise InputError(
                f"talking_head_profile={self.default_profile!r} is not a profile: use "
                + ", ".join(self.profiles)
            )
        self.device_name = device or settings.talking_head_device
        if fp8 is None:  # argument > setting > the default profile's (fast: fp8 storage)
            fp8 = settings.talking_head_fp8
        self.fp8 = self.profiles[self.default_profile].fp8 if fp8 is None else fp8
        self.compile = settings.talking_head_compile if compile is None else compile
        self.reanchor_seconds = (
            settings.talking_head_reanchor_seconds if reanchor_seconds is None else reanchor_seconds
        )
        self.components = None
        self.fused_lora: str | None = None
        self._lora_backup: dict = {}
        self._placed = False  # weights cast/offloaded: LoRA swaps would lose precision

    # --- load -------------------------------------------------------------------------------

    def load(self) -> None:
        import torch

        from gpu.infinitetalk.pipeline import Components, Options

        device = torch.device(self.device_name or ("cuda" if torch.cuda.is_available() else "cpu"))
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        default = self.profiles[self.default_profile]
        options = Options(
            device=device,
            dtype=dtype,
            fp8=self.fp8,
            offload=default.offload,
            attention=default.attention,
            compile=self.compile,
        )

        def fuse_default_lora(components) -> None:
            self.components = components
            self._use_lora(default)

        self.components = Components.load(self.weights_dir, options, fuse_default_lora)
        self._placed = True
        log.info("infinitetalk loaded on %s: %s", device, "; ".join(self.components.notes))

    def _use_lora(self, profile: Profile) -> None:
        """Fuse the profile's LoRA (exactly undoing a different one first)."""
        from gpu.infinitetalk.lora import fuse_lora, restore
        from gpu.infinitetalk.weights import lora_path

        if profile.lora == self.fused_lora:
            return
        model = self.components.transformer
        if self.fp8 and self._placed:
            raise InputError(
                f"this worker stores its weights in fp8 with LoRA {self.fused_lora or 'none'}; "
                f"the {profile.name} profile needs {profile.lora or 'none'}: use the worker's "
                f"default profile ({self.default_profile}), or the operator sets "
                "DROPREEL_TALKING_HEAD_FP8=false so that it can swap profiles"
            )
        if self.fused_lora:
            restore(model, self._lora_backup)
            self.fused_lora = None
        if profile.lora:
            fuse_lora(
                model,
                lora_path(profile.lora, self.weights_dir),
                profile.lora_scale,
                self._lora_backup,
            )
            self.fused_lora = profile.lora

    # --- check --------------------------------------------------------------------------------

    def check_inputs(self, request: RenderRequest) -> TalkingHeadPlan:
        if request.kind not in ("talking_head", "dubbing"):
            raise InputError(
                f"the infinitetalk engine makes talking_head and dubbing videos, not {request.kind}"
            )
        dubbing = request.kind == "dubbing"
        what = "dubbed video" if dubbing else "talking-head video"
        picture, audio = (request.video if dubbing else request.image), request.audio
        if picture is None or audio is None or not audio.seconds:
            needs = "one video" if dubbing else "one image"
            raise InputError(f"a {request.kind} job needs {needs} and one non-empty audio file")
        profile = pick_profile(request.profile, self.default_profile, self.profiles)
        check_longest(audio, profile, self.profiles, what)
        seconds = audio.seconds
        audio_frames = int(seconds * FPS)
        if audio_frames < MIN_FRAMES:
            raise InputError(
                f"{audio.name} is {seconds * 1000:.0f} ms long; a {what} needs "
                f"at least {MIN_FRAMES / FPS:.1f} s of speech"
            )
        from gpu.infinitetalk.sampler import frame_plan, snap_frames

        frames = snap_frames(audio_frames)
        width, height = profile.bucket(picture.width, picture.height)
        adjustments = length_adjustments(picture, seconds) if dubbing else []
        if (picture.width, picture.height) != (width, height):
            what = "video" if dubbing else "image"
            adjustments.append(
                f"{what} {picture.width}x{picture.height} resized and centre-cropped to "
                f"{width}x{height} ({profile.bucket_name} bucket nearest its aspect)"
            )
        if dubbing and picture.fps != FPS:
            adjustments.append(
                f"video at {float(picture.fps):g} fps dubbed at {FPS} fps, InfiniteTalk's rate"
            )
        if frames != audio_frames:
            cut = (audio_frames - frames) / FPS + (seconds - audio_frames / FPS)
            adjustments.append(
                f"{frames} frames (a multiple of 4 plus 1) at {FPS} fps: the last "
                f"{cut * 1000:.0f} ms of audio are cut"
            )
        if request.fps and request.fps != FPS:
            adjustments.append(f"fps {request.fps} ignored: talking-head videos are {FPS} fps")
        if request.width or request.height:
            adjustments.append("width/height ignored: the size follows the image's aspect")
        if request.duration_seconds:
            adjustments.append("duration_seconds ignored: the video is as long as the audio")
        speakers = self._check_speakers(request, width, height) if request.voices else None
        return TalkingHeadPlan(
            request=request,
            width=width,
            height=height,
            fps=FPS,
            num_frames=frames,
            seed=request.seed if request.seed is not None else 42,
            adjustments=adjustments,
            profile=profile,
            steps=request.steps or profile.steps,
            text_guidance=profile.text_guidance if request.guidance is None else request.guidance,
            clips=len(frame_plan(frames, profile.clip_frames, profile.motion_frames)),
            reanchor_every=self._reanchor_every(profile),
            speakers=speakers,
            speaking=Speaking(request.speaking or DEFAULT_SPEAKING) if speakers else None,
            speed=list(self.components.notes) if self.components is not None else [],
        )

    def _check_speakers(self, request: RenderRequest, width: int, height: int) -> tuple[Box, Box]:
        """Two speakers: their boxes, each still in the picture once it is cropped to size."""
        from gpu.infinitetalk.speakers import portrait_masks

        if request.kind != "talking_head":
            raise InputError("two voices make a talking-head video from one image, not a dub")
        image = request.image
        boxes = speaker_boxes(request.speakers, image.width, image.height)
        masks = portrait_masks(boxes, image.size, width, height)
        for number, mask in enumerate(masks[:2], 1):
            if not mask.any():
                raise InputError(
                    f"speaker {number}'s box {list(boxes[number - 1])} falls outside the part of "
                    f"the image that is kept (centre-cropped to the {width}x{height} aspect) or "
                    "is smaller than 8 pixels there: move or enlarge it in prompt.json"
                )
        return boxes

    def _reanchor_every(self, profile: Profile) -> int:
        """Clips between restarts for the configured re-anchoring period (0: never)."""
        if not self.reanchor_seconds:
            return 0
        new_frames = profile.clip_frames - profile.motion_frames  # per clip after the first
        return max(1, round(self.reanchor_seconds * FPS / new_frames))

    # --- render -------------------------------------------------------------------------------

    def render(
        self, plan: TalkingHeadPlan, progress: Progress | None = None
    ) -> Iterator[np.ndarray]:
        from gpu.infinitetalk.audio import speech_features
        from gpu.infinitetalk.pipeline import DEFAULT_PROMPT, NEGATIVE_PROMPT, Job, render_frames
        from gpu.infinitetalk.speakers import portrait_masks

        if self.components is None:
            self.load()
        profile = plan.profile
        self._use_lora(profile)
        request = plan.request
        second = masks = None
        if plan.speakers is not None:
            embedding, second = _two_voices(request.voices, plan.speaking, self.components.audio)
            masks = portrait_masks(plan.speakers, request.image.size, plan.width, plan.height)
            self.components.use_adapter("multi")
        else:
            _, embedding = speech_features(request.audio, self.components.audio)
            self.components.use_adapter("single")
        image, later = request.image, None
        if request.video is not None:  # dubbing: each clip starts on its own source frame
            image, later = _clip_sources(request.video, plan)
        job = Job(
            image=image,
            speech_embedding=embedding,
            width=plan.width,
            height=plan.height,
            frames=plan.num_frames,
            prompt=request.prompt or DEFAULT_PROMPT,
            negative_prompt=request.negative_prompt or NEGATIVE_PROMPT,
            seed=plan.seed,
            profile=profile,
            steps=plan.steps,
            text_guidance=plan.text_guidance,
            audio_guidance=profile.audio_guidance,
            later_sources=later,
            reanchor_every=plan.reanchor_every,
            second_speech=second,
            speaker_masks=masks,
        )
        yield from render_frames(self.components, job, progress)


def _two_voices(voices, speaking: Speaking, encoder):
    """Both speakers' features on the video's timeline, each levelled alone (the reference's
    `audio_prepare_multi`: loudness per recording, then placed in turns or together)."""
    from gpu.infinitetalk.audio import SAMPLE_RATE, loudness_normalize
    from gpu.two_speakers import placed

    first, second = (loudness_normalize(v.samples(SAMPLE_RATE)) for v in voices)
    return tuple(encoder.embed(track) for track in placed(first, second, speaking))


def _clip_sources(video, plan: TalkingHeadPlan):
    """(first frame, the frames later clips start on), decoded lazily in one pass."""
    from PIL import Image

    from gpu.infinitetalk.sampler import frame_plan

    profile = plan.profile
    starts = [s for s, _ in frame_plan(plan.num_frames, profile.clip_frames, profile.motion_frames)]
    frames = (
        Image.fromarray(f) for f in video.frames_at(source_index(s, FPS, video.fps) for s in starts)
    )
    return next(frames), frames


def scaled_profiles(scale: float, **changes) -> dict[str, Profile]:
    """The profiles with every bucket scaled (sides kept multiples of 16): for tests and benches."""

    def snap(v: int) -> int:
        return max(16, math.floor(v * scale / 16) * 16)

    return {
        name: replace(
            p, buckets={r: (snap(h), snap(w)) for r, (h, w) in p.buckets.items()}, **changes
        )
        for name, p in PROFILES.items()
    }
