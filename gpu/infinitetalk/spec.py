"""The talking-head engine's registry record: kinds, GPU, licence, limits, profiles, weights.

Kept apart from `engine.py` so the registry reads it without importing torch.
"""

from __future__ import annotations

from gpu.infinitetalk.profiles import PROFILES
from gpu.infinitetalk.weights import WEIGHTS
from gpu.registry import EngineSpec

# max_render_seconds: 300 s of audio on the fast profile or 180 s on balanced, at a pessimistic
# speed on the default GPU.
INFINITETALK = EngineSpec(
    name="infinitetalk",
    kinds=("talking_head", "dubbing"),
    target="gpu.infinitetalk.engine:InfiniteTalkEngine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB",),
    gpu_memory_gib=64,
    description="InfiniteTalk: Wan2.1-I2V-14B + audio adapter, lip-synced talking heads "
    "of any length at 480p (720p with the quality profile), 25 fps; dubbing in video mode.",
    license="Wan2.1 Apache-2.0; InfiniteTalk Apache-2.0; chinese-wav2vec2-base MIT",
    max_render_seconds=14400,
    profiles=PROFILES,
    weights=WEIGHTS,
    segments=True,
)
