"""Mochi 1 preview (Genmo) on diffusers: text-to-video at 848x480, 30 fps.

Checkpoint, profiles and limits are in `gpu/diffusers_models.py` (`MOCHI`): frames 6n+1 (its
VAE compresses time by 6), sides multiples of 16. `MochiPipeline` has no image-to-video mode, so
this engine serves text_to_video only.
"""

from __future__ import annotations

from gpu.diffusers_engine import DiffusersVideoEngine
from gpu.diffusers_models import MOCHI


class MochiEngine(DiffusersVideoEngine):
    """Mochi 1 text-to-video; the shared code path needs nothing model-specific."""

    spec = MOCHI
