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

A distilled 0.9.8 request longer than one call's 361 frames runs LTX-Video's own long mode,
diffusers' `LTXI2VLongMultiPromptPipeline` (temporal windows, each conditioned on the tail of
the one before), with the recipe of Lightricks' ComfyUI long multi-prompt workflow
(`LTX_LONG`); `longest_seconds` is then None, so handlers/long_clips.py hands the whole request
to this engine instead of rendering clip after clip. The 0.9.7 dev model (`quality`) has no
such recipe and continues clip after clip.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine, StepCounter
from gpu.diffusers_models import LTX_DISTILLED_TIMESTEPS, LTX_LONG, LTX_VIDEO
from gpu.engine import RenderRequest
from gpu.errors import EngineError

UPSAMPLE = "upsample"
"""The key of the upsampling pipeline among the engine's loaded pipelines."""
LONG = "long"
"""The key of the long-mode pipeline among the engine's loaded pipelines."""
LONG_PIPELINE = "LTXI2VLongMultiPromptPipeline"
LONG_SCHEDULER = "LTXEulerAncestralRFScheduler"


@dataclass(kw_only=True)
class LTXLongPlan(DiffusersPlan):
    """A render past one call: the long pipeline, one pass at the planned size, in windows."""

    grid_temporal: int
    """The VAE's temporal compression (frames per latent frame)."""

    @property
    def pipeline(self) -> str:
        return LONG_PIPELINE

    @property
    def schedule(self) -> str:
        return (
            f"{LONG_SCHEDULER}, sigmas {list(LTX_LONG.sigmas)} per window; "
            f"{len(self.windows)} windows of {LTX_LONG.tile_frames} frames overlapping "
            f"{LTX_LONG.overlap_frames}, conditioning strength {LTX_LONG.cond_strength:g}, "
            f"AdaIN {LTX_LONG.adain_factor:g}"
        )

    @property
    def windows(self) -> list[tuple[int, int]]:
        """The pipeline's own split of the latent frames into windows."""
        from diffusers.pipelines.ltx.pipeline_ltx_i2v_long_multi_prompt import (
            split_into_temporal_windows,
        )

        temporal = self.grid_temporal
        return split_into_temporal_windows(
            (self.num_frames - 1) // temporal + 1,
            LTX_LONG.tile_frames // temporal,
            LTX_LONG.overlap_frames // temporal,
            temporal,
        )

    @property
    def denoise_steps(self) -> int:
        return len(self.windows) * (len(LTX_LONG.sigmas) - 1)

    @property
    def passes(self) -> tuple[tuple[int, int], ...]:
        return ((self.width, self.height),)

    def _multiscale(self) -> dict[str, Any]:
        return {}


class LTXVideoEngine(DiffusersVideoEngine):
    """LTX-Video text-to-video and image-to-video."""

    spec = LTX_VIDEO

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        kwargs["frame_rate"] = plan.fps
        return kwargs

    def longest_seconds(self, request: RenderRequest) -> float | None:
        """None for a distilled profile: this engine renders a long request itself."""
        if self.renders_long(request):
            return None
        return super().longest_seconds(request)

    def renders_long(self, request: RenderRequest) -> bool:
        """Whether the request's profile runs the distilled schedule the long mode is for."""
        profile = self.spec.profiles.get(request.profile or self.spec.default_profile)
        return profile is not None and profile.timesteps == LTX_DISTILLED_TIMESTEPS

    def check_inputs(self, request: RenderRequest) -> DiffusersPlan:
        plan = super().check_inputs(request)
        if plan.num_frames <= (plan.variant.max_frames or self.spec.max_frames):
            return plan
        values = {f.name: getattr(plan, f.name) for f in fields(plan)}
        steps = len(LTX_LONG.sigmas) - 1
        if plan.steps != steps:
            plan.adjustments.append(
                f"steps {plan.steps} changed to {steps}: past {plan.variant.max_frames} frames "
                f"{self.spec.name} runs its long mode, {steps} steps per window"
            )
        values |= {"steps": steps, "timesteps": None}
        return LTXLongPlan(**values, grid_temporal=self.spec.temporal)

    def _frames(self, request: RenderRequest, fps: int, limit: int, adjustments: list[str]) -> int:
        if self.renders_long(request):
            limit = sys.maxsize  # windows slide over any length: prompt.json's limit applies
        return super()._frames(request, fps, limit, adjustments)

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
        if isinstance(plan, LTXLongPlan):
            return self.denoise_long(pipe, plan, kwargs, steps)
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

    def denoise_long(
        self, pipe: Any, plan: DiffusersPlan, kwargs: dict[str, Any], steps: StepCounter
    ) -> Any:
        """Past one call: the long pipeline on the same modules, one pass at the planned size,
        with the recipe of `LTX_LONG` (its scheduler, sigmas, windows and strengths)."""
        if LONG not in self._pipes:
            import diffusers

            scheduler = getattr(diffusers, LONG_SCHEDULER).from_config(pipe.scheduler.config)
            components = {k: getattr(pipe, k) for k in ("vae", "text_encoder", "tokenizer")}
            long = getattr(diffusers, LONG_PIPELINE)(
                scheduler=scheduler,
                transformer=pipe.transformer,
                **components,
            )
            long.set_progress_bar_config(disable=True)
            self._pipes[LONG] = long
        tiles = LTX_LONG.decode_tiles(plan.width, plan.height, pipe.vae_spatial_compression_ratio)
        call = {
            "prompt": kwargs["prompt"],
            "negative_prompt": kwargs["negative_prompt"],
            "width": plan.width,
            "height": plan.height,
            "num_frames": plan.num_frames,
            "frame_rate": plan.fps,
            "guidance_scale": plan.guidance,
            "sigmas": list(LTX_LONG.sigmas),
            "seed": plan.seed,
            "cond_image": plan.image,
            "cond_strength": LTX_LONG.cond_strength,
            "temporal_tile_size": LTX_LONG.tile_frames,
            "temporal_overlap": LTX_LONG.overlap_frames,
            "temporal_overlap_cond_strength": LTX_LONG.cond_strength,
            "adain_factor": LTX_LONG.adain_factor,
            "decode_timestep": kwargs["decode_timestep"],
            "decode_noise_scale": kwargs["decode_noise_scale"],
            **tiles,
            "output_type": "np",
        }
        return self.call(self._pipes[LONG], call, steps).frames[0]


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
