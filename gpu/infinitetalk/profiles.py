"""Talking-head profiles: speed/quality trade-offs, each with its own duration limit.

Numbers from the reference unless said otherwise: 40 steps, text guidance 5, audio guidance 4,
shift 7 at 480p and 11 at 720p; clips of 81 frames continued with 9 motion frames; colour
correction strength 1.0. The 480p and 720p buckets are the reference's `ASPECT_RATIO_627` and
`ASPECT_RATIO_960` tables (height/width ratio -> size). `balanced` and `quality` are the
reference's recipe, unchanged.

`fast` is the fastest single-GPU path: the lightx2v step- and CFG-distillation LoRA, 4 steps.
Sources: the InfiniteTalk README ("Run with FusioniX or Lightx2v (Require only 4~8 steps)":
FusioniX needs 8 steps, lightx2v "only 4"; with a LoRA, text guidance 1 and audio guidance 2,
shift 2, LoRA scale 1.0) and LightX2V's step-distillation notes (4 steps "without CFG": text
guidance 1 drops the text-guidance pass, leaving 2 passes per step, with and without audio).
TeaCache is off: its thresholds were fitted on the 40-step schedule, and with 4 steps every step
is one of its always-computed warm-up steps anyway. The transformer is stored in fp8 (diffusers'
layerwise casting, computed in bf16) and attention uses the fastest kernel that loads, in the
order of `FAST_ATTENTION` (the choice and every fallback are recorded in status.json). FusioniX
(8 steps) stays selectable with `talking_head_fast_lora=fusionx`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

# height/width ratio -> (height, width)
BUCKETS_480: dict[float, tuple[int, int]] = {
    0.26: (320, 1216),
    0.38: (384, 1024),
    0.50: (448, 896),
    0.67: (512, 768),
    0.82: (576, 704),
    1.00: (640, 640),
    1.22: (704, 576),
    1.50: (768, 512),
    1.86: (832, 448),
    2.00: (896, 448),
    2.50: (960, 384),
    2.83: (1088, 384),
    3.60: (1152, 320),
    3.80: (1216, 320),
    4.00: (1280, 320),
}
BUCKETS_720: dict[float, tuple[int, int]] = {
    0.22: (448, 2048),
    0.29: (512, 1792),
    0.36: (576, 1600),
    0.45: (640, 1408),
    0.55: (704, 1280),
    0.63: (768, 1216),
    0.76: (832, 1088),
    0.88: (896, 1024),
    1.00: (960, 960),
    1.14: (1024, 896),
    1.31: (1088, 832),
    1.50: (1152, 768),
    1.58: (1216, 768),
    1.82: (1280, 704),
    1.91: (1344, 704),
    2.20: (1408, 640),
    2.30: (1472, 640),
    2.67: (1536, 576),
    2.89: (1664, 576),
    3.62: (1856, 512),
    3.75: (1920, 512),
}

# TeaCache polynomial coefficients published by the reference (use_ret_steps=True variant).
TEACACHE_480 = (2.57151496e05, -3.54229917e04, 1.40286849e03, -1.35890334e01, 1.32517977e-01)
TEACACHE_720 = (8.10705460e03, 2.13393892e03, -3.72934672e02, 1.66203073e01, -4.17769401e-02)


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    bucket_name: str
    buckets: dict[float, tuple[int, int]]
    steps: int
    shift: float
    text_guidance: float
    audio_guidance: float
    max_seconds: float
    lora: str | None = None
    lora_scale: float = 1.0
    offload: bool = False
    clip_frames: int = 81
    motion_frames: int = 9
    color_match: float = 1.0
    teacache: float | None = None
    teacache_coefficients: tuple[float, ...] = TEACACHE_480
    fp8: bool = False  # store the transformer in fp8 (a worker whose default profile asks it)
    attention: tuple[str, ...] = ()  # diffusers attention backends to try, fastest first

    def bucket(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the bucket whose height/width ratio is nearest the image's."""
        ratio = height / width
        key = min(self.buckets, key=lambda r: abs(r - ratio))
        h, w = self.buckets[key]
        return w, h


BALANCED = Profile(
    name="balanced",
    bucket_name="480p",
    buckets=BUCKETS_480,
    steps=40,
    shift=7.0,
    text_guidance=5.0,
    audio_guidance=4.0,
    max_seconds=180.0,
    teacache=0.2,
)

# SageAttention 2 from the Hugging Face kernel hub (prebuilt, `kernels` package), then
# FlashAttention 3 likewise, then source-built SageAttention >= 2.1.1 or flash-attn if present;
# PyTorch SDPA when none loads (docs/TALKING_HEAD.md, "The fast profile").
FAST_ATTENTION = ("sage_hub", "_flash_3_hub", "sage", "_flash_3", "flash")

PROFILES: dict[str, Profile] = {
    "fast": replace(
        BALANCED,
        name="fast",
        lora="lightx2v",
        steps=4,
        shift=2.0,
        text_guidance=1.0,
        audio_guidance=2.0,
        max_seconds=300.0,
        teacache=None,
        fp8=True,
        attention=FAST_ATTENTION,
    ),
    "balanced": BALANCED,
    "quality": replace(
        BALANCED,
        name="quality",
        bucket_name="720p",
        buckets=BUCKETS_720,
        shift=11.0,
        max_seconds=60.0,
        teacache=None,
        teacache_coefficients=TEACACHE_720,
    ),
    "low_vram": replace(BALANCED, name="low_vram", offload=True),
}

FUSIONX = {"steps": 8, "shift": 2.0, "text_guidance": 1.0, "audio_guidance": 2.0}


def with_fast_lora(profile: Profile, choice: str) -> Profile:
    """The fast profile with the chosen LoRA (lightx2v: 4 steps, the default; fusionx: 8)."""
    if profile.lora is None or choice == profile.lora:
        return profile
    if choice == "fusionx":
        return replace(profile, lora="fusionx", **FUSIONX)
    raise ValueError(f"unknown fast LoRA {choice!r}: use lightx2v or fusionx")
