"""The makers' fast recipes run as planned, seen from inside the transformer.

The recipe table (test_recipes.py) checks what each plan says; here the tiny transformers
record what they are actually called with: the timesteps of FastWan's DMD sampling, the two
passes of LTX-Video's multiscale flow (first pass at 2/3 of the size, refine at twice that,
frames resized back), and the step-distilled HunyuanVideo 1.5 image-to-video checkpoint's 12
MeanFlow steps. A recipe that only changed a label would fail here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
from PIL import Image

from gpu.engine import RenderRequest
from gpu.registry import load_engine


@contextmanager
def calls(transformer: Any) -> Iterator[list[dict[str, Any]]]:
    """Each forward call of `transformer`: its timestep (largest value) and its token count."""
    seen: list[dict[str, Any]] = []

    def record(_module: Any, args: tuple, kwargs: dict) -> None:
        timestep = kwargs.get("timestep", args[2] if len(args) > 2 else None)
        hidden = kwargs.get("hidden_states", args[0] if args else None)
        seen.append({"timestep": float(timestep.max()), "tokens": hidden.shape[1]})

    handle = transformer.register_forward_pre_hook(record, with_kwargs=True)
    try:
        yield seen
    finally:
        handle.remove()


def render(engine_name: str, request: RenderRequest) -> tuple[Any, np.ndarray, list[dict]]:
    engine = load_engine(engine_name)
    plan = engine.check_inputs(request)
    with calls(engine.pipeline(plan).transformer) as seen:
        frames = np.stack(list(engine.render(plan)))
    return plan, frames, seen


def fox(profile: str, **extra: Any) -> RenderRequest:
    args: dict[str, Any] = dict(width=96, height=64, duration_seconds=0.2, seed=7)
    args.update(extra)
    return RenderRequest(kind="text_to_video", prompt="a red fox", profile=profile, **args)


def test_fastwan_runs_three_dmd_steps_at_its_timesteps_without_guidance(tiny_cache):
    plan, frames, seen = render("wan2.2-ti2v-5b", fox("fast"))
    assert plan.variant.repo.repo_id == "FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers"
    assert [round(c["timestep"]) for c in seen] == [1000, 757, 522]  # one call each: no CFG
    again = render("wan2.2-ti2v-5b", fox("fast"))[1]
    other = render("wan2.2-ti2v-5b", fox("fast", seed=8))[1]
    assert np.array_equal(frames, again)  # the fresh noise of each step comes from the seed
    assert not np.array_equal(frames, other)
    # the scheduler is the checkpoint's own again for the next job
    engine = load_engine("wan2.2-ti2v-5b")
    assert type(engine.pipeline(plan).scheduler).__name__ == "FlowMatchEulerDiscreteScheduler"


@pytest.mark.parametrize("profile", ["fast", "balanced"])
def test_ltx_distilled_runs_the_multiscale_flow(tiny_cache, profile):
    plan, frames, seen = render("ltx-video", fox(profile))
    first, refine = plan.passes
    assert (first, refine) == ((64, 32), (128, 64))
    assert len(seen) == 8 + 4  # the 8 distilled steps, then 4 of the 5 refine timesteps
    # tokens: latent frames x latent rows x latent columns (32 pixels each way, 8 frames)
    tokens = [c["tokens"] for c in seen]
    latent_frames = (plan.num_frames - 1) // 8 + 1
    assert tokens == [latent_frames * 1 * 2] * 8 + [latent_frames * 2 * 4] * 4
    assert [round(c["timestep"]) for c in seen[8:]] == [909, 725, 421, 0]
    assert frames.shape == (plan.num_frames, 64, 96, 3)  # resized to the planned size


def test_hunyuan_fast_image_to_video_runs_the_step_distilled_checkpoint(tiny_cache):
    request = RenderRequest(
        kind="image_to_video",
        prompt="a red fox",
        profile="fast",
        image=Image.new("RGB", (96, 64), "orange"),
        duration_seconds=0.2,
        seed=7,
    )
    plan, frames, seen = render("hunyuanvideo-1.5", request)
    assert plan.variant.repo.repo_id.endswith("480p_i2v_step_distilled")
    assert load_engine("hunyuanvideo-1.5").pipeline(plan).transformer.config.use_meanflow
    assert (plan.steps, plan.guidance, len(seen)) == (12, 1.0, 12)  # no unconditional pass
    assert frames.shape == (plan.num_frames, plan.height, plan.width, 3)
