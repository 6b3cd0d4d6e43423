"""LTX-Video past one call's 361 frames: its own long mode renders the whole request in one
run (diffusers' `LTXI2VLongMultiPromptPipeline`), with the recipe docs/ENGINES.md writes down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from gpu.diffusers_models import LTX_LONG, LTX_VIDEO
from gpu.engine import RenderRequest
from gpu.ltx_video import LONG, LTXVideoEngine
from handlers.long_clips import plan_clips

DOC = Path(__file__).resolve().parents[2] / "docs" / "ENGINES.md"


def long_request(**extra) -> RenderRequest:
    fields = {"kind": "text_to_video", "profile": "fast", **extra}
    return RenderRequest(
        prompt="a red fox runs through the snow",
        width=64,
        height=64,
        duration_seconds=12.5,
        seed=7,
        **fields,
    )


def test_a_request_past_one_call_renders_whole_through_the_long_pipeline(tiny_cache):
    engine = LTXVideoEngine()
    request = long_request()
    assert plan_clips("ltx-video", engine, request) is None  # the engine renders it itself
    plan = engine.check_inputs(request)
    assert plan.num_frames == 377 > LTX_VIDEO.variants["2b-distilled"].max_frames
    steps: list[tuple[int, int]] = []
    frames = list(engine.render(plan, lambda done, total: steps.append((done, total))))
    assert len(frames) == plan.num_frames
    settings = plan.describe()  # status.json's settings: enough to make it again
    assert settings["pipeline"] == "LTXI2VLongMultiPromptPipeline"
    assert "4 windows of 120 frames overlapping 32" in settings["schedule"]
    assert "multiscale" not in settings
    assert steps[-1] == (4 * 8 + 1, 4 * 8 + 1) and len(steps) == 4 * 8 + 1
    assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.uint8
    long = engine._pipes[LONG]
    assert type(long).__name__ == "LTXI2VLongMultiPromptPipeline"
    assert type(long.scheduler).__name__ == "LTXEulerAncestralRFScheduler"


def test_an_image_to_video_request_past_one_call_starts_from_its_photo(tiny_cache):
    engine = LTXVideoEngine()
    photo = Image.new("RGB", (64, 64), (200, 40, 40))
    plan = engine.check_inputs(long_request(kind="image_to_video", image=photo))
    frames = list(engine.render(plan))
    assert len(frames) == plan.num_frames == 377


def test_quality_has_no_long_recipe_and_continues_clip_after_clip(tiny_cache):
    engine = LTXVideoEngine()
    clips = plan_clips("ltx-video", engine, long_request(profile="quality"))
    assert clips is not None and clips.seconds_each == 257 / 30


def test_the_long_recipe_is_the_documented_one():
    text = DOC.read_text().split("## Longer than one clip", 1)[1]
    row = next(line for line in text.splitlines() if line.startswith("| `ltx-video`"))
    sigmas = ", ".join(f"{s:g}" for s in LTX_LONG.sigmas)
    assert f"sigmas [{sigmas}]" in row
    assert f"windows of {LTX_LONG.tile_frames} frames overlapping {LTX_LONG.overlap_frames}" in row
    assert f"conditioning strength {LTX_LONG.cond_strength:g}" in row
    assert f"AdaIN {LTX_LONG.adain_factor:g}" in row
    assert "LTXEulerAncestralRFScheduler" in row and "[L6]" in row


def test_a_long_request_asking_other_steps_is_told_the_long_mode_runs_eight(tiny_cache):
    plan = LTXVideoEngine().check_inputs(long_request(steps=3))
    assert plan.describe()["steps"] == 8
    assert any("steps 3 changed to 8" in a for a in plan.adjustments)
