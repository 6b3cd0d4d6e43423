"""LTX-Video (Lightricks) on diffusers: the default engine for text- and image-to-video.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`LTX_VIDEO`): the 0.9.8 13B
distilled model (its own 8-step schedule, no guidance) for `fast`, `balanced` and `low_vram`,
the 0.9.7 13B dev model for `quality`. Both kinds run `LTXConditionPipeline`, the pipeline
diffusers documents for these checkpoints (the only LTX pipeline that takes their `timesteps`);
image-to-video passes the photo as the condition of frame 0. Frames are 8n+1, sides multiples
of 32, 30 fps native. LTX conditions on the frame rate, so the plan's fps is passed.
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
        return kwargs
