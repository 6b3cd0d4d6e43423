"""LTX-Video (Lightricks) on diffusers: the default engine for text- and image-to-video.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`LTX_VIDEO`): the 2B
distilled model for `fast`, 13B for `balanced`/`quality`. Text-to-video runs `LTXPipeline`;
image-to-video runs `LTXImageToVideoPipeline` built from the same loaded components
(`from_pipe`, no second copy in memory). Frames are 8n+1, sides multiples of 32. LTX conditions
on the frame rate, so the plan's fps is passed to the model.
"""

from __future__ import annotations

from typing import Any

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine
from gpu.diffusers_models import LTX_VIDEO


class LTXVideoEngine(DiffusersVideoEngine):
    """LTX-Video text-to-video and image-to-video."""

    spec = LTX_VIDEO

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        kwargs["frame_rate"] = plan.fps
        if plan.guidance <= 1.0:
            kwargs["negative_prompt"] = None  # distilled checkpoints run without CFG
        return kwargs
