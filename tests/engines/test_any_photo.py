"""Any photo, any aspect ratio: image-to-video fits the photo inside the model's pixel budget.

Every image-to-video engine and profile accepts 16:9, 4:3, 1:1, 9:16 and 21:9 photos at camera
sizes, records the fit, and plans a size on the model's grid within the budget (the model's own
rule: floor to the grid). A render per engine and aspect (at a small budget, so it runs on CPU)
decodes frames at exactly the planned size.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from gpu.diffusers_models import MODELS
from gpu.engine import RenderRequest
from gpu.registry import load_engine
from tests.tiny_models import HY15_TARGET_SIZE

PHOTOS = {"16:9": (1920, 1080), "4:3": (1600, 1200), "1:1": (1024, 1024), "9:16": (1080, 1920)}
PHOTOS["21:9"] = (2520, 1080)
I2V = [name for name, spec in MODELS.items() if "image_to_video" in spec.kinds]


def photo(size: tuple[int, int]) -> Image.Image:
    rng = np.random.default_rng(sum(size))
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def request(size: tuple[int, int], profile: str, **extra) -> RenderRequest:
    return RenderRequest(
        kind="image_to_video", image=photo(size), prompt="a fox", profile=profile, **extra
    )


def budget(engine: str, profile: str) -> int:
    """The pixels a photo may fill: the profile's, or HunyuanVideo 1.5's bucket area."""
    if engine == "hunyuanvideo-1.5":  # the pipeline's buckets: at most target_size**2 pixels
        return HY15_TARGET_SIZE**2
    spec = MODELS[engine]
    return min(spec.profiles[profile].width * spec.profiles[profile].height, spec.max_pixels)


@pytest.mark.parametrize("aspect", PHOTOS)
@pytest.mark.parametrize(("engine", "profile"), [(e, p) for e in I2V for p in MODELS[e].profiles])
def test_photo_is_fitted_inside_the_budget(tiny_cache, engine, profile, aspect):
    spec, size, pixels = MODELS[engine], PHOTOS[aspect], budget(engine, profile)
    plan = load_engine(engine).check_inputs(request(size, profile))
    assert plan.width % spec.grid == 0 and plan.height % spec.grid == 0
    assert max(plan.width, plan.height) <= spec.max_side
    assert 0.7 * pixels <= plan.width * plan.height <= pixels  # inside, not shrunk needlessly
    wanted, got = size[0] / size[1], plan.width / plan.height
    assert max(wanted / got, got / wanted) < 1.15
    assert plan.image.size == (plan.width, plan.height)
    assert any(
        f"image {size[0]}x{size[1]} fitted to {plan.width}x{plan.height}" in a
        for a in plan.adjustments
    )


def test_a_1920x1080_photo_on_wan_is_accepted_at_its_default(tiny_cache):
    plan = load_engine("wan2.2-ti2v-5b").check_inputs(request((1920, 1080), None))
    assert (plan.width, plan.height) == (1248, 704)
    square = load_engine("wan2.2-ti2v-5b").check_inputs(request((1024, 1024), None))
    assert (square.width, square.height) == (928, 960)  # 960x960 is past 1280x704's pixels


@pytest.mark.parametrize("aspect", PHOTOS)
@pytest.mark.parametrize("engine", I2V)
def test_frames_come_out_at_the_planned_size(tiny_cache, engine, aspect):
    base = load_engine(engine)
    small = replace(base.spec.profiles["fast"], width=256, height=160)
    cls = type(base)
    tiny_budget = type(cls.__name__, (cls,), {"spec": replace(base.spec, profiles={"fast": small})})
    engine_at_small_size = tiny_budget()
    engine_at_small_size.load()
    plan = engine_at_small_size.check_inputs(
        request(PHOTOS[aspect], "fast", duration_seconds=0.1, steps=1, seed=1)
    )
    frames = list(engine_at_small_size.render(plan))
    assert len(frames) == plan.num_frames
    assert {f.shape for f in frames} == {(plan.height, plan.width, 3)}
