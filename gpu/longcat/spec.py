"""The LongCat-Video-Avatar engine's registry record: kinds, GPU, licence, limits, profiles, weights.

Kept apart from `engine.py` so the registry reads it without importing torch.
"""

from __future__ import annotations

from gpu.longcat.profiles import PROFILES
from gpu.longcat.weights import WEIGHTS
from gpu.registry import EngineSpec

# max_render_seconds: 300 s of audio on the fast profile (4 segments a minute at 25 fps, 8 steps
# each) or 60 s on quality (50 steps, three guidance passes), at a pessimistic speed on the
# default GPU. gpu_memory_gib: the 15.9B-parameter DiT in bf16 (31.7 GB) plus UMT5-XXL, the VAE
# and 93-frame activations, from parameter counts (not measured here).
LONGCAT_AVATAR = EngineSpec(
    name="longcat-avatar",
    kinds=("talking_head",),
    target="gpu.longcat.engine:LongCatAvatarEngine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB",),
    gpu_memory_gib=64,
    description="LongCat-Video-Avatar (Meituan): a 13.6B video DiT with audio modules; long, "
    "stable lip-synced talking heads from a portrait, 480p, 25 fps (v1.5) or 16 fps (v1.0).",
    license="MIT (code and weights)",
    license_url="https://github.com/meituan-longcat/LongCat-Video/blob/main/LICENSE",
    max_render_seconds=14400,
    profiles=PROFILES,
    weights=WEIGHTS,
)
