"""The diffusers engines end to end on tiny random weights: bucket -> poller -> engine -> MP4.

The tiny checkpoints are the real pipeline classes saved in the published layout under the real
repo ids in a Hugging Face-style cache (tests/tiny_models.py); the engines find them through
`gpu.weights.local_snapshot`, offline, exactly as they find real weights.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from config.settings import get_settings
from gpu.diffusers_models import MODELS
from gpu.engine import RenderRequest
from gpu.registry import get_spec, load_engine
from infra.local_dispatch import InlineDispatcher
from infra.wiring import build_runtime
from tests.helpers import Outcomes
from triggers.poller import tick

pytest.importorskip("diffusers")


def png_bytes(width: int = 120, height: int = 90) -> bytes:
    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def decode_mp4(data: bytes) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) of an MP4, counted by decoding every frame."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        return (
            frames,
            stream.codec_context.width,
            stream.codec_context.height,
            float(stream.average_rate),
        )


def run_bucket_job(storage, make_settings, files: dict[str, bytes], **overrides) -> dict:
    for key, data in files.items():
        storage.put(key, data)
    rt = build_runtime(make_settings(storage, **overrides), storage=storage)
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    keys = [o.key for o in storage.list().objects]
    status_key = next(k for k in keys if k.endswith("status.json"))
    status = json.loads(storage.get(status_key))
    assert list(results.values()) == ["done"], status["error"]
    mp4 = next(k for k in keys if k.endswith(".mp4"))
    status["_mp4"] = decode_mp4(storage.get(mp4))
    return status


PROMPT = {"prompt": "a red fox walks in the city at night", "steps": 2, "seed": 7}
CASES = [
    # engine, kind, prompt.json extras, expected (frames, width, height, fps)
    (
        "ltx-video",
        "text_to_video",
        {"duration_seconds": 0.4, "width": 96, "height": 64},
        (9, 96, 64, 30),  # LTX-Video's native 30 fps
    ),
    ("ltx-video", "image_to_video", {"duration_seconds": 0.7, "height": 64}, (17, 96, 64, 30)),
    (
        "wan2.2-ti2v-5b",
        "text_to_video",
        {"duration_seconds": 0.2, "width": 64, "height": 64},
        (5, 64, 64, 24),
    ),
    (
        "wan2.2-ti2v-5b",
        "image_to_video",
        {"duration_seconds": 0.2, "width": 96, "height": 64},
        (5, 96, 64, 24),
    ),
    (
        "hunyuanvideo-1.5",
        "text_to_video",
        {"duration_seconds": 0.2, "width": 96, "height": 64},
        (5, 96, 64, 24),
    ),
    (
        "mochi",
        "text_to_video",
        {"duration_seconds": 0.2, "width": 96, "height": 64},
        (7, 96, 64, 30),
    ),
]


@pytest.mark.parametrize(("engine", "kind", "extra", "expected"), CASES)
def test_prompt_json_renders_through_the_lifecycle(
    s3_storage, make_settings, tiny_cache, engine, kind, extra, expected
):
    prompt = {**PROMPT, "engine": engine, **extra}
    files = {"inbox/fox/prompt.json": json.dumps(prompt).encode()}
    if kind == "image_to_video":
        files["inbox/fox/fox.png"] = png_bytes()
    status = run_bucket_job(s3_storage, make_settings, files)

    assert status["state"] == "done"
    assert status["kind"] == kind
    assert status["engine"] == engine and status["preview"] is False
    assert status["_mp4"] == (expected[0], expected[1], expected[2], float(expected[3]))
    settings = status["settings"]
    assert settings["seed"] == 7 and settings["seed_from"] == "prompt.json"
    assert settings["frames"] == expected[0]
    assert settings["model"] in {r.repo_id for r in MODELS[engine].repos}
    assert len(settings["weights"]) == 40  # the cached commit that was loaded
    assert all("skipped on cpu" in v for v in settings["speed"].values())
    assert any("n+1 frames" in a for a in status["adjustments"])


def test_default_engine_from_settings(s3_storage, make_settings, tiny_cache):
    prompt = {**PROMPT, "duration_seconds": 0.3, "width": 64, "height": 64, "fps": 24}
    status = run_bucket_job(
        s3_storage,
        make_settings,
        {"inbox/a/prompt.json": json.dumps(prompt).encode()},
        engine_text_to_video="ltx-video",
    )
    assert status["engine"] == "ltx-video"
    assert status["_mp4"] == (9, 64, 64, 24.0)
    assert "duration 0.3s at 24 fps = 7.2 frames" in status["adjustments"][0]


def test_same_seed_same_video(tiny_cache):
    engine = load_engine("ltx-video")
    request = RenderRequest(
        kind="text_to_video", prompt="a cat", duration_seconds=0.3, width=64, height=64, steps=2
    )
    first = engine.check_inputs(RenderRequest(**{**request.__dict__, "seed": 11}))
    again = engine.check_inputs(RenderRequest(**{**request.__dict__, "seed": 11}))
    other = engine.check_inputs(RenderRequest(**{**request.__dict__, "seed": 12}))
    a, b, c = (np.stack(list(engine.render(p))) for p in (first, again, other))
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    unseeded = engine.check_inputs(request)
    assert unseeded.describe()["seed_from"] == "random" and 0 <= unseeded.seed < 2**32


@pytest.mark.parametrize("name", ["wan2.2-ti2v-5b", "hunyuanvideo-1.5"])
def test_progress_reports_steps_then_decode(tiny_cache, name):
    engine = load_engine(name)  # Wan: step callback; HunyuanVideo 1.5: counted scheduler steps
    plan = engine.check_inputs(
        RenderRequest(
            kind="text_to_video", prompt="sea", duration_seconds=0.2, width=64, height=64, steps=3
        )
    )
    seen: list[tuple[int, int]] = []
    frames = list(engine.render(plan, lambda done, total: seen.append((done, total))))
    assert len(frames) == 5
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_missing_weights_fail_at_once_with_the_fix(tmp_path):
    from gpu.errors import WeightsMissing
    from gpu.ltx_video import LTXVideoEngine

    engine = LTXVideoEngine(cache_dir=tmp_path / "empty")
    engine.load()
    request = RenderRequest(kind="text_to_video", prompt="a cat", profile="quality")
    with pytest.raises(WeightsMissing) as err:
        engine.check_inputs(request)
    assert "dropreel weights pull ltx-video --profile quality" in str(err.value)
    assert "Lightricks/LTX-Video-0.9.7-dev" in str(err.value)
    assert err.value.permanent


def test_missing_weights_fail_the_job_in_plain_words(s3_storage, make_settings, tmp_path):
    old = os.environ.get("DROPREEL_HF_CACHE_DIR")
    os.environ["DROPREEL_HF_CACHE_DIR"] = str(tmp_path / "nothing-here")
    get_settings.cache_clear()
    try:
        s3_storage.put("inbox/x/prompt.json", json.dumps({**PROMPT, "engine": "mochi"}).encode())
        rt = build_runtime(make_settings(s3_storage), storage=s3_storage)
        results = Outcomes()
        dispatcher = InlineDispatcher(rt, results)
        tick(rt, dispatcher)
    finally:
        os.environ.pop("DROPREEL_HF_CACHE_DIR", None)
        if old is not None:
            os.environ["DROPREEL_HF_CACHE_DIR"] = old
        get_settings.cache_clear()
    assert list(results.values()) == ["failed"]
    keys = [o.key for o in s3_storage.list().objects]
    assert not [k for k in keys if k.endswith(".mp4")]
    status = json.loads(s3_storage.get(next(k for k in keys if k.endswith("status.json"))))
    assert status["state"] == "failed" and status["attempt"] == 1
    assert "dropreel weights pull mochi" in status["error"]


def test_engines_are_registered_as_data():
    for name, model in MODELS.items():
        spec = get_spec(name)
        assert spec.gpu and spec.license and not spec.preview
        assert set(spec.kinds) == set(model.kinds)


def test_watcher_and_weights_cli_import_without_torch():
    code = (
        "import sys, gpu.builtin, gpu.registry, gpu.diffusers_models, gpu.weights, "
        "infra.cli.main, infra.cli.weights, handlers.lifecycle, triggers.poller\n"
        "from gpu.registry import get_spec; [get_spec(n) for n in ('ltx-video', 'mochi')]\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[2])


def test_the_configured_image_limit_is_every_engines_limit(s3_storage, make_settings, tiny_cache):
    """An operator who raises max_image_pixels gets it in every engine: none has its own cap."""
    buf = io.BytesIO()
    Image.new("RGB", (8000, 5200), (90, 120, 200)).save(buf, "PNG")  # 41.6 M pixels
    prompt = {**PROMPT, "engine": "ltx-video", "duration_seconds": 0.3, "height": 64}
    files = {
        "inbox/big/prompt.json": json.dumps(prompt).encode(),
        "inbox/big/big.png": buf.getvalue(),
    }
    status = run_bucket_job(s3_storage, make_settings, files, max_image_pixels=45_000_000)
    assert status["state"] == "done" and status["kind"] == "image_to_video"
    assert any("8000x5200 scaled and centre-cropped" in a for a in status["adjustments"])
