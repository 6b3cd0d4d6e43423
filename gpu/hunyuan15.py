"""HunyuanVideo 1.5 (Tencent) on diffusers: text- and image-to-video, 480p and 720p checkpoints.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`HUNYUANVIDEO_15`): one
diffusers repo per resolution and task (480p/720p x t2v/i2v); frames 4n+1, sides multiples of
16, 24 fps. Two differences from the other families, handled here:

- guidance lives in the pipeline's `guider` component, not in a `guidance_scale` argument;
- the pipelines take no step callback, so progress counts scheduler steps instead;
- image-to-video picks its own size bucket from the image (no width/height arguments); when the
  frames come out at another size than planned, the change is recorded in the adjustments.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine
from gpu.diffusers_models import HUNYUANVIDEO_15
from gpu.engine import Progress


class HunyuanVideo15Engine(DiffusersVideoEngine):
    """HunyuanVideo 1.5 text-to-video and image-to-video."""

    spec = HUNYUANVIDEO_15
    takes_step_callback = False

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        guidance = kwargs.pop("guidance_scale")
        if getattr(pipe.guider, "guidance_scale", None) != guidance:
            pipe.guider = pipe.guider.new(guidance_scale=guidance)
        if plan.request.kind == "image_to_video":
            kwargs.pop("width")
            kwargs.pop("height")
        return kwargs

    def render(self, plan: DiffusersPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        for index, frame in enumerate(super().render(plan, progress)):
            if index == 0 and frame.shape[:2] != (plan.height, plan.width):
                plan.adjustments.append(
                    f"HunyuanVideo 1.5 chose {frame.shape[1]}x{frame.shape[0]} for this image "
                    f"(planned {plan.width}x{plan.height})"
                )
            yield frame
