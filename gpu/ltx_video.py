"""LTX-Video (Lightricks) on diffusers: the default engine for text- and image-to-video.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`LTX_VIDEO`): the 0.9.8 2B
distilled model for `fast` and `low_vram` (Lightricks publish it only as one file, loaded by
diffusers' single-file loading), the 0.9.8 13B distilled model for `balanced` (both with their
own 8-step schedule, no guidance), the 0.9.7 13B dev model for `quality`. Both kinds run
`LTXConditionPipeline`, the pipeline diffusers documents for these checkpoints (the only LTX
pipeline that takes their `timesteps`); image-to-video passes the photo as the condition of
frame 0. Frames are 8n+1, sides multiples of 32, 30 fps native. LTX conditions on the frame
rate, so the plan's fps is passed.

The distilled checkpoints run the makers' multiscale flow (their configs' `multi-scale`
pipeline, as diffusers' docs write it): the first pass at 2/3 of the size, the latents
upsampled x2 by Lightricks' spatial upscaler (`LTXLatentUpsamplePipeline`, the upscaler read
from its published single file), a short refine pass at the doubled size, and the frames
resized to the planned size, as Lightricks' own pipeline does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine, StepCounter
from gpu.diffusers_models import LTX_VIDEO
from gpu.errors import EngineError

UPSAMPLE = "upsample"
"""The key of the upsampling pipeline among the engine's loaded pipelines."""


class LTXVideoEngine(DiffusersVideoEngine):
    """LTX-Video text-to-video and image-to-video."""

    spec = LTX_VIDEO

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        kwargs["frame_rate"] = plan.fps
        return kwargs

    def pipeline(self, plan: DiffusersPlan) -> Any:
        pipe = super().pipeline(plan)
        if plan.variant.multiscale is not None and UPSAMPLE not in self._pipes:
            from diffusers import LTXLatentUpsamplePipeline

            upsampler = self.upsampler(plan).to(dtype=pipe.vae.dtype, device=pipe.vae.device)
            upsample = LTXLatentUpsamplePipeline(vae=pipe.vae, latent_upsampler=upsampler)
            upsample.set_progress_bar_config(disable=True)
            self._pipes[UPSAMPLE] = upsample
        return pipe

    def upsampler(self, plan: DiffusersPlan) -> Any:
        """The multiscale flow's spatial upscaler, from the pulled file."""
        multiscale, snapshot = plan.variant.multiscale, plan.upsampler_snapshot
        if multiscale is None or snapshot is None:
            raise EngineError(f"{plan.variant.name} has no multiscale flow")
        return load_upsampler(snapshot.path / multiscale.file)

    def denoise(
        self, pipe: Any, plan: DiffusersPlan, kwargs: dict[str, Any], steps: StepCounter
    ) -> Any:
        multiscale = plan.variant.multiscale
        if multiscale is None:
            return super().denoise(pipe, plan, kwargs, steps)
        import torch

        (width, height), (refine_width, refine_height) = plan.passes
        latents = self.call(
            pipe, {**kwargs, "width": width, "height": height, "output_type": "latent"}, steps
        ).frames
        upsampled = self._pipes[UPSAMPLE](
            latents=latents,
            adain_factor=multiscale.adain_factor,
            tone_map_compression_ratio=multiscale.tone_map or 0.0,
            output_type="latent",
        ).frames
        refine = {
            **kwargs,
            "width": refine_width,
            "height": refine_height,
            "latents": upsampled,
            "timesteps": list(multiscale.refine_timesteps),
            "num_inference_steps": len(multiscale.refine_timesteps),
            "denoise_strength": multiscale.refine_strength,
            "output_type": "pt",
        }
        video = self.call(pipe, refine, steps).frames[0]  # (frames, channels, h, w) in 0..1
        resized = torch.nn.functional.interpolate(
            video.float(), size=(plan.height, plan.width), mode="bilinear", align_corners=False
        )
        return resized.permute(0, 2, 3, 1).cpu().numpy()


def load_upsampler(path: Path) -> Any:
    """Lightricks' spatial upscaler from its published single file: the config is in the file's
    metadata, the tensor names are diffusers' own (`LTXLatentUpsamplerModel`); loaded strictly,
    so a missing or unexpected tensor is an error, never a silent gap."""
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata() or {}
    if "config" not in metadata:
        raise EngineError(
            f"{path.name} has no config in its metadata: it is not Lightricks' upscaler file; "
            "run `dropreel weights pull ltx-video` again"
        )
    config = json.loads(metadata["config"])
    names = LTXLatentUpsamplerModel.extract_init_dict(config)[0]
    model = LTXLatentUpsamplerModel(**names)
    model.load_state_dict(load_file(str(path)), strict=True)
    return model.eval()
