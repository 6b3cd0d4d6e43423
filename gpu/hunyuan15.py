"""HunyuanVideo 1.5 (Tencent) on diffusers: text- and image-to-video, 480p and 720p checkpoints.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`HUNYUANVIDEO_15`): one
diffusers repo per resolution and task (480p/720p x t2v/i2v); frames 4n+1, sides multiples of
16, 24 fps. Differences from the other families, handled here:

- guidance lives in the pipeline's `guider` component, not in a `guidance_scale` argument;
- the pipelines take no step callback, so progress counts scheduler steps instead;
- image-to-video renders at the size bucket the pipeline picks for the photo's aspect (from the
  checkpoint's `target_size`) and takes no width/height: the plan uses that very bucket, by
  diffusers' own function, so the frames come out at the planned size.
"""

from __future__ import annotations

import json
from typing import Any

from PIL import Image

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine
from gpu.diffusers_models import HUNYUANVIDEO_15, Profile
from gpu.weights import Snapshot


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
            # The photo itself: the pipeline picks the bucket from its aspect, as the plan did
            # (a pre-cropped copy can land in the next bucket by float rounding) and crops it.
            kwargs["image"] = plan.request.image
        return kwargs

    photo_decides_size = True

    def _fit_photo(
        self, image: Image.Image, profile: Profile, snapshot: Snapshot
    ) -> tuple[int, int, str]:
        from diffusers.pipelines.hunyuan_video1_5.image_processor import (
            HunyuanVideo15ImageProcessor,
        )

        config = json.loads((snapshot.path / "transformer" / "config.json").read_text())
        target = int(config.get("target_size", 640))
        processor = HunyuanVideo15ImageProcessor(vae_scale_factor=self.spec.grid)
        height, width = processor.calculate_default_height_width(
            height=image.size[1], width=image.size[0], target_size=target
        )
        why = f"HunyuanVideo 1.5's size bucket for the photo's aspect at target size {target}"
        return width, height, why
