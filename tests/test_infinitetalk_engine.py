"""The infinitetalk engine with tiny random weights, loaded from the published layouts.

An image + voice pair dropped on moto renders through the real lifecycle (poller tick + inline
dispatcher); the MP4 is decoded with PyAV and checked: frame count from the audio at 25 fps
(4n+1), an audio stream as long as the video within one frame. Streaming mode: audio three clips
long makes one continuous video of the right length.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu.errors import InputError, WeightsMissing  # noqa: E402
from gpu.infinitetalk.engine import InfiniteTalkEngine, scaled_profiles  # noqa: E402
from gpu.infinitetalk.sampler import frame_plan  # noqa: E402
from infra.cli import samples  # noqa: E402
from infra.local_dispatch import InlineDispatcher  # noqa: E402
from infra.wiring import build_runtime  # noqa: E402
from tests import infinitetalk_tiny  # noqa: E402
from tests.helpers import Outcomes, decoded_request  # noqa: E402
from triggers.poller import tick  # noqa: E402

# 16x16 buckets, 1 step, short clips: the real code path at a size a CPU renders in seconds.
TINY_PROFILES = scaled_profiles(0.025, steps=1, clip_frames=17, motion_frames=5, teacache=None)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return infinitetalk_tiny.build(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def engine(tiny_weights) -> InfiniteTalkEngine:
    eng = InfiniteTalkEngine(weights_dir=tiny_weights, profiles=TINY_PROFILES, device="cpu")
    eng.load()
    return eng


def _probe(path: Path) -> tuple[int, float, float]:
    """(video frames, video seconds, audio seconds) of an MP4, by decoding it."""
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        samples_n = sum(f.samples for f in c.decode(stream))
        rate = stream.rate
    return frames, frames / 25, samples_n / rate


def test_image_and_voice_render_through_the_lifecycle_on_s3(
    s3_storage, make_settings, engine, tmp_path
):
    seconds = 2.3  # 57 audio frames -> 57 is 4*14+1
    storage = s3_storage
    storage.put("talk/face.png", samples.portrait_png(96, 64), "image/png")
    storage.put("talk/face.wav", samples.voice_wav(seconds, rate=22050, channels=2), "audio/wav")
    settings = make_settings(storage, engine_talking_head="infinitetalk")
    rt = build_runtime(settings, storage=storage)
    rt.engine_loader = lambda name: engine
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    assert list(results.values()) == ["done"]
    status = json.loads(storage.get("talk/.dropreel/face/status.json"))
    assert status["state"] == "done" and status["engine"] == "infinitetalk"
    assert status["settings"]["mode"] == "streaming"  # 57 frames > one 17-frame tiny clip
    video = tmp_path / "out.mp4"
    video.write_bytes(storage.get("talk/face.mp4"))
    frames, video_s, audio_s = _probe(video)
    expected = (int(seconds * 25) - 1) // 4 * 4 + 1
    assert frames == expected == status["settings"]["frames"]
    assert (frames - 1) % 4 == 0
    assert abs(audio_s - video_s) <= 1 / 25
    with av.open(str(video)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (16, 16)


def test_clip_mode_for_short_audio(local_storage, make_settings, engine, tmp_path):
    seconds = 0.62  # 15 frames -> 13 (4n+1), one clip
    local_storage.put("a/face.png", samples.portrait_png(64, 96), "image/png")
    local_storage.put("a/face.wav", samples.voice_wav(seconds, rate=16000), "audio/wav")
    rt = build_runtime(
        make_settings(local_storage, engine_talking_head="infinitetalk"), local_storage
    )
    rt.engine_loader = lambda name: engine
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    status = json.loads(local_storage.get("a/.dropreel/face/status.json"))
    assert status["state"] == "done", status
    assert status["settings"]["mode"] == "clip" and status["settings"]["clips"] == 1
    video = tmp_path / "a.mp4"
    video.write_bytes(local_storage.get("a/face.mp4"))
    frames, video_s, audio_s = _probe(video)
    assert frames == 13
    assert abs(audio_s - video_s) <= 1 / 25


def test_streaming_three_clips_make_one_continuous_video(engine, tiny_weights, tmp_path):
    profile = TINY_PROFILES["balanced"]
    clip, motion = profile.clip_frames, profile.motion_frames
    total = clip + 2 * (clip - motion)  # exactly three clips
    plan_clips = frame_plan(total, clip, motion)
    assert len(plan_clips) == 3
    assert [s for s, _ in plan_clips] == [0, clip - motion, 2 * (clip - motion)]
    wav = tmp_path / "long.wav"
    wav.write_bytes(samples.voice_wav(total / 25 + 0.01, rate=16000))
    png = tmp_path / "face.png"
    png.write_bytes(samples.portrait_png(64, 64))
    request = decoded_request("talking_head", image=png, audio=wav)
    plan = engine.check_inputs(request)
    assert plan.num_frames == total and plan.describe()["clips"] == 3
    seen: list[tuple[int, int]] = []
    frames = list(engine.render(plan, lambda done, of: seen.append((done, of))))
    assert len(frames) == total
    assert all(f.shape == (16, 16, 3) and f.dtype == np.uint8 for f in frames)
    dones = [d for d, _ in seen]
    assert dones == sorted(dones) and dones[-1] == total and {t for _, t in seen} == {total}


def test_check_inputs_refuses_what_cannot_work(engine, tmp_path):
    from gpu.engine import RenderRequest

    png = tmp_path / "f.png"
    png.write_bytes(samples.portrait_png(64, 64))
    wav = tmp_path / "v.wav"
    wav.write_bytes(samples.voice_wav(1.0))
    request = decoded_request("talking_head", image=png, audio=wav)
    quality_max = TINY_PROFILES["quality"].max_seconds
    with pytest.raises(InputError, match=r"quality profile .* at most 60 s.*fast profile"):
        engine.check_inputs(
            replace(
                request,
                audio=replace(request.audio, seconds=quality_max + 1),
                profile="quality",
            )
        )
    with pytest.raises(InputError, match=r"at least 0\.2 s"):
        engine.check_inputs(replace(request, audio=replace(request.audio, seconds=0.1)))
    with pytest.raises(InputError, match="talking_head"):
        engine.check_inputs(RenderRequest(kind="text_to_video", prompt="x"))


def test_any_aspect_maps_to_the_nearest_bucket():
    profile = scaled_profiles(1.0)["balanced"]
    assert profile.bucket(1920, 1080) == (896, 448)  # wide: h/w 0.56 -> 0.50
    assert profile.bucket(1080, 1920) == (448, 832)  # tall: 1.78 -> 1.86
    assert profile.bucket(500, 500) == (640, 640)
    assert scaled_profiles(1.0)["quality"].bucket(1280, 720) == (1280, 704)


def test_missing_weights_name_the_fix(tmp_path):
    eng = InfiniteTalkEngine(weights_dir=tmp_path / "empty", device="cpu")
    with pytest.raises(WeightsMissing, match="dropreel weights pull talking-head"):
        eng.load()


def test_lora_fuses_and_restores_exactly(tiny_weights):
    from gpu.infinitetalk.lora import fuse_lora, restore
    from gpu.infinitetalk.pipeline import load_transformer

    model = load_transformer(
        tiny_weights / "Wan2.1-I2V-14B-480P",
        tiny_weights / "InfiniteTalk/single/infinitetalk.safetensors",
        torch.float32,
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}
    lora = tiny_weights / infinitetalk_tiny.LIGHTX2V_LORA
    backup: dict = {}
    changed = fuse_lora(model, lora, scale=0.5, backup=backup)
    assert changed == 2 * 3 + 1
    from safetensors.torch import load_file

    raw = load_file(str(lora))
    up = raw["diffusion_model.blocks.1.self_attn.q.lora_up.weight"]
    down = raw["diffusion_model.blocks.1.self_attn.q.lora_down.weight"]
    got = model.state_dict()["blocks.1.attn1.to_q.weight"] - before["blocks.1.attn1.to_q.weight"]
    assert torch.allclose(got, 0.5 * up @ down, atol=1e-6)
    restore(model, backup)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_fast_profile_renders_with_the_lora(engine, tmp_path):
    png = tmp_path / "f.png"
    png.write_bytes(samples.portrait_png(64, 64))
    wav = tmp_path / "v.wav"
    wav.write_bytes(samples.voice_wav(0.3))
    plan = engine.check_inputs(
        decoded_request("talking_head", image=png, audio=wav, profile="fast")
    )
    assert plan.describe()["lora"] == "lightx2v" and plan.describe()["text_guidance"] == 1.0
    frames = list(engine.render(plan))
    assert len(frames) == 5 and engine.fused_lora == "lightx2v"
    engine._use_lora(TINY_PROFILES["balanced"])  # back to the base weights for other tests
    assert engine.fused_lora is None and not math.isnan(float(frames[-1].mean()))
