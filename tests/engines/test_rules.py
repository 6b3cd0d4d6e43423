"""Frame-count and size rules, profile resolution, and refusal of impossible requests."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gpu.diffusers_models import LTX_VIDEO, MOCHI, MODELS, WAN22_TI2V_5B
from gpu.engine import RenderRequest
from gpu.errors import InputError
from gpu.registry import load_engine
from infra.local_dispatch import InlineDispatcher
from infra.wiring import build_runtime
from tests.helpers import Outcomes, Renders, decoded_request, started
from triggers.poller import tick


@pytest.mark.parametrize(
    ("spec", "seconds", "fps", "frames"),
    [
        (LTX_VIDEO, 5.0, 24, 121),  # 8*15+1: exactly 5 s plus the first frame
        (LTX_VIDEO, 4.0, 30, 121),
        (LTX_VIDEO, 0.01, 24, 9),  # never fewer than one latent step
        (WAN22_TI2V_5B, 5.0, 24, 121),
        (WAN22_TI2V_5B, 2.0, 24, 49),
        (MOCHI, 5.0, 30, 151),
        (MOCHI, 1.0, 30, 31),
    ],
)
def test_frame_rule(spec, seconds, fps, frames):
    assert spec.frames_for(seconds, fps) == frames
    assert (frames - 1) % spec.temporal == 0


def test_every_model_is_consistent():
    for spec in MODELS.values():
        for name, profile in spec.profiles.items():
            for kind in spec.kinds:
                variant = spec.variant_for(name, kind)
                assert kind in variant.pipelines, (spec.name, name, kind)
            assert profile.width % spec.grid == 0 and profile.height % spec.grid == 0
            assert profile.width * profile.height <= spec.max_pixels
        assert spec.fps in spec.allowed_fps
        assert (spec.max_frames - 1) % spec.temporal == 0
        assert spec.default_profile in spec.profiles


def test_size_snaps_to_grid_and_is_recorded(tiny_cache):
    plan = load_engine("ltx-video").check_inputs(
        RenderRequest(kind="text_to_video", prompt="sky", width=500, height=300)
    )
    assert (plan.width, plan.height) == (512, 288)
    assert any("500x300 snapped to 512x288" in a and "32" in a for a in plan.adjustments)
    assert (plan.num_frames, plan.fps) == (153, 30)  # 5 s at LTX's native 30 fps -> 8n+1 = 153


def test_exact_requests_are_not_adjusted(tiny_cache):
    plan = load_engine("wan2.2-ti2v-5b").check_inputs(
        RenderRequest(
            kind="text_to_video", prompt="sky", width=832, height=480, duration_seconds=2 + 1 / 24
        )
    )
    assert plan.adjustments == []
    assert (plan.width, plan.height, plan.num_frames) == (832, 480, 49)


def test_fps_the_model_cannot_make_is_changed_and_recorded(tiny_cache):
    plan = load_engine("mochi").check_inputs(
        RenderRequest(kind="text_to_video", prompt="sea", fps=24, duration_seconds=1.0)
    )
    assert plan.fps == 30 and plan.num_frames == 31
    assert any("fps 24 changed to 30" in a for a in plan.adjustments)
    ltx = load_engine("ltx-video").check_inputs(
        RenderRequest(kind="text_to_video", prompt="sea", fps=30, duration_seconds=4.0)
    )
    assert (ltx.fps, ltx.num_frames) == (30, 121)


@pytest.mark.parametrize(
    ("engine", "profile", "variant", "steps", "guidance", "size"),
    [
        ("ltx-video", None, "2b-distilled", 8, 1.0, (768, 512)),
        ("ltx-video", "fast", "2b-distilled", 8, 1.0, (768, 512)),
        ("ltx-video", "balanced", "13b-distilled", 8, 1.0, (1216, 704)),
        ("ltx-video", "quality", "13b-dev", 30, 5.0, (1216, 704)),
        ("wan2.2-ti2v-5b", None, "ti2v-5b", 50, 5.0, (1280, 704)),
        ("wan2.2-ti2v-5b", "fast", "fastwan-3step", 3, 1.0, (1280, 704)),
        ("mochi", "quality", "preview", 64, 4.5, (848, 480)),
    ],
)
def test_profile_resolution(tiny_cache, engine, profile, variant, steps, guidance, size):
    plan = load_engine(engine).check_inputs(
        RenderRequest(kind="text_to_video", prompt="sky", profile=profile)
    )
    settings = plan.describe()
    assert settings["variant"] == variant
    assert settings["profile"] == (profile or MODELS[engine].default_profile)
    assert (settings["steps"], settings["guidance"]) == (steps, guidance)
    assert (plan.width, plan.height) == size


def test_ltx_098_renders_long_clips_in_one_call(tiny_cache):
    plan = load_engine("ltx-video").check_inputs(
        RenderRequest(kind="text_to_video", prompt="sky", duration_seconds=12)
    )
    assert (plan.num_frames, plan.fps, plan.describe()["variant"]) == (361, 30, "2b-distilled")


def test_prompt_values_override_the_profile(tiny_cache):
    plan = load_engine("ltx-video").check_inputs(
        RenderRequest(kind="text_to_video", prompt="sky", profile="quality", steps=12, guidance=0)
    )
    assert (plan.describe()["steps"], plan.describe()["guidance"]) == (12, 0)


def test_image_sets_the_aspect_when_no_size_is_given(tiny_cache, tmp_path: Path):
    image = tmp_path / "wide.png"
    Image.fromarray(np.zeros((540, 960, 3), np.uint8)).save(image)
    plan = load_engine("wan2.2-ti2v-5b").check_inputs(
        decoded_request("image_to_video", prompt="sky", image=image, profile="fast")
    )
    assert plan.width % 32 == 0 and plan.height % 32 == 0
    assert abs(plan.width / plan.height - 16 / 9) < 0.1
    assert plan.image.size == (plan.width, plan.height)
    assert any("960x540 scaled and centre-cropped" in a for a in plan.adjustments)


@pytest.mark.parametrize(
    ("engine", "request_args", "message"),
    [
        ("ltx-video", {"duration_seconds": 9, "profile": "quality"}, "257 frames (8.57s)"),
        ("wan2.2-ti2v-5b", {"duration_seconds": 6}, "limit of 121 frames (5.04s)"),
        ("mochi", {"width": 1920, "height": 1080}, "past mochi's limit"),
        ("ltx-video", {"width": 4096, "height": 64}, "longest side 1280"),
        ("ltx-video", {"prompt": None}, 'needs a non-empty "prompt"'),
        ("mochi", {"kind": "image_to_video"}, "does not make image_to_video"),
        ("ltx-video", {"kind": "image_to_video"}, "needs an image"),
    ],
)
def test_impossible_requests_are_refused(tiny_cache, engine, request_args, message):
    values = {"kind": "text_to_video", "prompt": "sky", **request_args}
    with pytest.raises(InputError) as err:
        load_engine(engine).check_inputs(RenderRequest(**values))
    assert message in str(err.value)
    assert err.value.permanent


def test_refusal_fails_the_job_once_with_the_reason(s3_storage, make_settings, tiny_cache):
    # Mochi makes no image-to-video clip to continue from, so it refuses past one clip
    prompt = {"prompt": "a long one", "engine": "mochi", "duration_seconds": 60}
    s3_storage.put("inbox/long/prompt.json", json.dumps(prompt).encode())
    rt = build_runtime(make_settings(s3_storage), storage=s3_storage)
    rt.on_start = Renders()
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    assert list(results.values()) == ["failed"]
    keys = [o.key for o in s3_storage.list().objects]
    status = json.loads(s3_storage.get(next(k for k in keys if k.endswith("status.json"))))
    assert status["attempt"] == 1 and status["state"] == "failed"
    assert "ask for 5.43 seconds or less" in status["error"]
    tick(rt, dispatcher)  # a failed version is never retried
    assert started(rt) == ["inbox/long/prompt"]


def test_corrupt_image_is_refused(tiny_cache, tmp_path: Path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png" + io.BytesIO(b"x" * 100).getvalue())
    with pytest.raises(InputError, match="not an image dropreel can read"):
        load_engine("ltx-video").check_inputs(
            decoded_request("image_to_video", prompt="sky", image=bad)
        )
