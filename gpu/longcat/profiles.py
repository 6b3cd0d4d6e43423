"""LongCat-Video-Avatar profiles: which model version, recipe and size each speed/quality choice is.

Facts from the reference's single-speaker demo (`run_demo_avatar_single_audio_to_video.py`) and
pipeline (`pipeline_longcat_video_avatar.py`) unless said otherwise:

- segments of 93 frames; every segment after the first is conditioned on the last 13 frames of
  the one before (4 latent frames) plus the first segment's first latent as a reference placed
  at time index 10 (`ref_img_index`), and noisy frames within 3 latent frames of that index do
  not attend to it (`mask_frame_range`);
- v1.0 (wav2vec2): 16 fps, audio features at 32 per second (stride 2), 50 steps, text and audio
  guidance 4 (three passes), sigmas `linspace(1, 0.001, steps)`; later segments end on 10 uniform
  timesteps from 500 (`enhance_hf`);
- v1.5 (Whisper-large-v3): 25 fps, stride 1; the DMD LoRA is required ("--use_distill"): 8 steps,
  text and audio guidance 1 (one pass), sigmas the 8 distilled ones from 1.0 down; the
  published INT8 DiT (`base_model_int8/`, `--use_int8`, v1.5 only) halves the DiT's memory:
  `low_vram` uses it, `fast` keeps the bf16 DiT an H100 holds whole;
- sizes: the portrait's aspect picks the nearest bucket of the reference's 480p table
  (832x480 landscape, 480x832 portrait, ...), as its image-to-video path does.

`max_seconds` is dropreel's limit per profile (the longest render the Modal timeout allows at a
pessimistic speed), `min_seconds` the shortest speech worth a talking head.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# height/width ratio -> (height, width): the reference's ASPECT_RATIO_627 table, the one its
# `get_condition_shape` uses for a 480p portrait (its 720p table is not offered here).
BUCKETS_480: dict[float, tuple[int, int]] = {
    0.26: (320, 1216), 0.31: (352, 1120), 0.38: (384, 1024), 0.43: (416, 960),
    0.52: (448, 864), 0.58: (480, 832), 0.67: (512, 768), 0.74: (544, 736),
    0.86: (576, 672), 0.95: (608, 640), 1.05: (640, 608), 1.17: (672, 576),
    1.29: (704, 544), 1.35: (736, 544), 1.50: (768, 512), 1.67: (800, 480),
    1.73: (832, 480), 2.00: (896, 448), 2.31: (960, 416), 2.58: (992, 384),
    2.75: (1056, 384), 3.09: (1088, 352), 3.70: (1184, 320), 3.80: (1216, 320),
    3.90: (1248, 320), 4.00: (1280, 320),
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Profile:
    name: str
    version: str  # "v1.0" (wav2vec2, 16 fps) or "v1.5" (Whisper, 25 fps)
    steps: int
    text_guidance: float
    audio_guidance: float
    max_seconds: float
    buckets: dict[float, tuple[int, int]] = field(default_factory=lambda: BUCKETS_480)
    distill: bool = False  # the DMD LoRA and its 8 distilled sigmas (v1.5)
    offload: bool = False  # blocks stream from host memory, one at a time (CUDA)
    int8: bool = False  # v1.5's published INT8 DiT (`base_model_int8/`) instead of the bf16 one
    min_seconds: float = 1.0
    segment_frames: int = 93
    cond_frames: int = 13
    ref_index: int = 10
    mask_range: int = 3

    @property
    def fps(self) -> int:
        return 25 if self.version == "v1.5" else 16

    @property
    def audio_stride(self) -> int:
        return 1 if self.version == "v1.5" else 2

    @property
    def new_frames(self) -> int:
        """Frames each segment after the first adds."""
        return self.segment_frames - self.cond_frames

    def bucket(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the bucket whose height/width ratio is nearest the image's."""
        ratio = height / width
        key = min(self.buckets, key=lambda r: abs(r - ratio))
        h, w = self.buckets[key]
        return w, h

    def sizes(self) -> list[tuple[int, int]]:
        return sorted({(w, h) for h, w in self.buckets.values()})

    def segments(self, frames: int) -> int:
        """Segments needed to cover `frames` video frames."""
        if frames <= self.segment_frames:
            return 1
        return 1 + -(-(frames - self.segment_frames) // self.new_frames)


FAST = Profile(
    name="fast",
    version="v1.5",
    steps=8,
    text_guidance=1.0,
    audio_guidance=1.0,
    distill=True,
    max_seconds=300.0,
)

PROFILES: dict[str, Profile] = {
    "fast": FAST,
    "quality": Profile(
        name="quality",
        version="v1.0",
        steps=50,
        text_guidance=4.0,
        audio_guidance=4.0,
        max_seconds=60.0,
    ),
    "low_vram": replace(FAST, name="low_vram", int8=True, offload=True, max_seconds=120.0),
}
