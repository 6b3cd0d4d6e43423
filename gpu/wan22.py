"""Wan2.2 TI2V-5B (Wan-AI) on diffusers: one 5B model for text- and image-to-video.

Checkpoints, profiles and limits are in `gpu/diffusers_models.py` (`WAN22_TI2V_5B`): the
diffusers-format repo, 1280x704 at 24 fps native, frames 4n+1, sides multiples of 32 (VAE 16 x
patch 2), the VAE in float32 and Wan's default negative prompt, as the makers' recipe has it.
Text-to-video runs `WanPipeline`; image-to-video runs `WanImageToVideoPipeline` built from the
same components: TI2V-5B conditions on the first frame's latents, so it needs no separate image
encoder.

`fast` runs FastVideo's FastWan2.2-TI2V-5B (dense attention), distilled by distribution
matching to three steps: each step predicts the clean latents and noises them afresh to the
next of the timesteps [1000, 757, 522], without guidance. `WanPipeline` takes no timesteps and
steps its scheduler itself, so for that checkpoint the call runs on diffusers'
`FlowMatchLCMScheduler` (the same arithmetic, sigma = timestep / 1000) with those timesteps and
the job's seeded generator for the fresh noise.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from gpu.diffusers_engine import DiffusersPlan, DiffusersVideoEngine, StepCounter
from gpu.diffusers_models import WAN22_TI2V_5B


class Wan22Engine(DiffusersVideoEngine):
    """Wan2.2 TI2V-5B text-to-video and image-to-video."""

    spec = WAN22_TI2V_5B

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        kwargs = super().call_kwargs(plan, pipe)
        if kwargs["negative_prompt"] is None:
            kwargs.pop("negative_prompt")  # the pipeline's default is an empty prompt
        kwargs.pop("timesteps", None)  # WanPipeline takes none: `denoise` sets the scheduler's
        return kwargs

    def denoise(
        self, pipe: Any, plan: DiffusersPlan, kwargs: dict[str, Any], steps: StepCounter
    ) -> Any:
        if not plan.variant.dmd:
            return super().denoise(pipe, plan, kwargs, steps)
        with dmd_sampling(pipe, plan.timesteps, kwargs["generator"]):
            return super().denoise(pipe, plan, kwargs, steps)


@contextmanager
def dmd_sampling(pipe: Any, timesteps: tuple[float, ...] | None, generator: Any) -> Iterator[None]:
    """The pipeline's call runs DMD sampling: `FlowMatchLCMScheduler` without shift (sigma =
    timestep / 1000, as FastVideo looks sigmas up), on `timesteps` (None: the scheduler's own
    spacing for the asked steps), its fresh noise drawn from the job's generator."""
    from diffusers import FlowMatchLCMScheduler

    original = pipe.scheduler
    scheduler = FlowMatchLCMScheduler(shift=1.0)
    if timesteps:
        scheduler.set_timesteps = partial(scheduler.set_timesteps, timesteps=list(timesteps))
    scheduler.step = partial(scheduler.step, generator=generator)
    pipe.scheduler = scheduler
    try:
        yield
    finally:
        pipe.scheduler = original
