"""Wan2.2 TI2V-5B (Wan-AI) on diffusers: one 5B model for text- and image-to-video.

Checkpoint, profiles and limits are in `gpu/diffusers_models.py` (`WAN22_TI2V_5B`): the
diffusers-format repo, 1280x704 at 24 fps native, frames 4n+1, sides multiples of 32 (VAE 16 x
patch 2), the VAE in float32 and Wan's default negative prompt, as the makers' recipe has it. Text-to-video runs `WanPipeline`; image-to-video runs `WanImageToVideoPipeline`
built from the same components (`from_pipe`): TI2V-5B conditions on the first frame's latents,
so it needs no separate image encoder.
"""

from __future__ import annotations

from typing import Any

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine
from gpu.diffusers_models import WAN22_TI2V_5B


class Wan22Engine(DiffusersVideoEngine):
    """Wan2.2 TI2V-5B text-to-video and image-to-video."""

    spec = WAN22_TI2V_5B

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        if kwargs["negative_prompt"] is None:
            kwargs.pop("negative_prompt")  # the pipeline's default is an empty prompt
        return kwargs
