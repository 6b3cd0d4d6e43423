"""The longcat-avatar engine with tiny random weights, loaded from the published layouts.

A portrait + voice pair whose prompt.json asks for `"engine": "longcat-avatar"` renders through
the real lifecycle on moto (poller tick + inline dispatcher); the MP4 is decoded with PyAV:
frames and fps per the recipe (v1.5: 25 fps, v1.0: 16 fps), as long as the audio within one
frame, audio stream present. Audio three segments long makes one continuous video whose later
segments start from the frames the one before ended on. Refusals name the limit and the fix.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu.errors import InputError, WeightsMissing  # noqa: E402
from gpu.longcat.engine import LongCatAvatarEngine, scaled_profiles  # noqa: E402
from gpu.longcat.model import FrameLayout  # noqa: E402
from gpu.longcat.profiles import PROFILES  # noqa: E402
from gpu.registry import get_spec  # noqa: E402
from handlers.errors import ObjectNotFound  # noqa: E402
from infra.cli import samples  # noqa: E402
from infra.local_dispatch import InlineDispatcher  # noqa: E402
from infra.wiring import build_runtime  # noqa: E402
from tests import longcat_tiny  # noqa: E402
from tests.helpers import Outcomes, decoded_request  # noqa: E402
from triggers.poller import tick  # noqa: E402

# 16-48 px buckets, 1 step, 17-frame segments carrying 5 frames: the real code path in seconds.
TINY_PROFILES = scaled_profiles(0.05, steps=1, segment_frames=17, cond_frames=5)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    return longcat_tiny.build(tmp_path_factory.mktemp("longcat-weights"))


@pytest.fixture(scope="session")
def engine(tiny_weights) -> LongCatAvatarEngine:
    eng = LongCatAvatarEngine(weights_dir=tiny_weights, profiles=TINY_PROFILES, device="cpu")
    eng.load()
    return eng


def _files(tmp_path: Path, seconds: float, size=(64, 96)) -> tuple[Path, Path]:
    png, wav = tmp_path / "face.png", tmp_path / "voice.wav"
    png.write_bytes(samples.portrait_png(*size))
    wav.write_bytes(samples.voice_wav(seconds, rate=16000))
    return png, wav


def _probe(path: Path) -> tuple[int, float, float, float]:
    """(video frames, fps, video seconds, audio seconds) of an MP4, by decoding it."""
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        frames = sum(1 for _ in c.decode(video=0))
    with av.open(str(path)) as c:
        stream = c.streams.audio[0]
        audio_s = sum(f.samples for f in c.decode(stream)) / stream.rate
    return frames, fps, frames / fps, audio_s


def test_portrait_and_voice_render_through_the_lifecycle_on_s3(
    s3_storage, make_settings, engine, tmp_path
):
    seconds = 1.3  # 32 frames at 25 fps: three tiny segments (17, then 12 new each)
    storage = s3_storage
    storage.put("talk/face.png", samples.portrait_png(96, 64), "image/png")
    storage.put("talk/face.wav", samples.voice_wav(seconds, rate=22050, channels=2), "audio/wav")
    storage.put("talk/prompt.json", json.dumps({"engine": "longcat-avatar"}).encode(), "x/json")
    rt = build_runtime(make_settings(storage), storage=storage)  # the kind's default: preview
    rt.engine_loader = lambda name: engine if name == "longcat-avatar" else pytest.fail(name)
    results = Outcomes()
    tick(rt, InlineDispatcher(rt, results))
    assert list(results.values()) == ["done"]
    status = json.loads(storage.get("talk/.dropreel/face/status.json"))
    assert status["state"] == "done" and status["engine"] == "longcat-avatar"
    settings = status["settings"]
    assert settings["model"] == "LongCat-Video-Avatar v1.5" and settings["lora"] == "dmd"
    assert settings["segments"] == 3 and settings["steps"] == 1
    video = tmp_path / "out.mp4"
    video.write_bytes(storage.get("talk/face.mp4"))
    frames, fps, video_s, audio_s = _probe(video)
    assert fps == 25 and frames == int(seconds * 25) == settings["frames"]
    assert abs(audio_s - video_s) <= 1 / 25  # the audio stream is there, as long as the video


def test_quality_profile_is_v10_at_16_fps(engine, tmp_path):
    png, wav = _files(tmp_path, 1.0)
    plan = engine.check_inputs(
        decoded_request("talking_head", image=png, audio=wav, profile="quality")
    )
    described = plan.describe()
    assert described["model"] == "LongCat-Video-Avatar v1.0" and described["fps"] == 16
    assert (described["text_guidance"], described["audio_guidance"]) == (4.0, 4.0)
    frames = list(engine.render(plan))
    assert len(frames) == int(1.0 * 16) == plan.num_frames
    assert frames[0].shape == (plan.height, plan.width, 3)
    assert engine.components.version == "v1.0"
    engine.load()  # back to the default (fast, v1.5) for the other tests


def test_low_vram_renders_on_the_int8_dit_with_the_lora_as_a_side_branch(engine, tmp_path):
    from gpu.longcat.int8 import QuantizedLinear

    png, wav = _files(tmp_path, 1.0)
    plan = engine.check_inputs(
        decoded_request("talking_head", image=png, audio=wav, profile="low_vram")
    )
    frames = list(engine.render(plan))
    assert len(frames) == 25 and plan.describe()["model"] == "LongCat-Video-Avatar v1.5 INT8"
    qkv = engine.components.transformer.blocks[0].attn.qkv
    assert isinstance(qkv, QuantizedLinear) and qkv.lora is not None
    assert not np.isnan(np.stack(frames).astype(float)).any()
    engine.load()  # back to the default (fast, bf16)


def test_three_segments_make_one_continuous_video(engine, tmp_path):
    profile = TINY_PROFILES["fast"]
    total = profile.segment_frames + 2 * profile.new_frames  # exactly three segments
    png, wav = _files(tmp_path, total / 25 + 0.01)
    plan = engine.check_inputs(decoded_request("talking_head", image=png, audio=wav))
    assert plan.num_frames == total and plan.describe()["segments"] == 3
    seen: list[tuple[int, int]] = []
    trace: list = []
    frames = list(engine.render_traced(plan, lambda d, of: seen.append((d, of)), trace))
    assert len(frames) == total
    assert [t.first_new_frame for t in trace] == [0, 17, 29]
    assert trace[0].conditioning is None
    for t in trace[1:]:  # each later segment starts from the last frames already delivered
        carried = np.stack(frames[t.first_new_frame - profile.cond_frames : t.first_new_frame])
        assert np.array_equal(t.conditioning, carried)
    assert seen == [(1, 3), (2, 3), (3, 3)]  # one step per segment, three segments


def test_refusals_say_what_is_wrong_and_what_to_do(engine, tmp_path):
    png, wav = _files(tmp_path, 1.5)
    request = decoded_request("talking_head", image=png, audio=wav)
    too_long = replace(request, audio=replace(request.audio, seconds=61.0), profile="quality")
    with pytest.raises(
        InputError,
        match=r"quality profile makes longcat-avatar videos of at most 60 s: cut .* or use the fast",
    ):
        engine.check_inputs(too_long)
    with pytest.raises(InputError, match=r"500 ms long; .* at least 1 s of speech"):
        engine.check_inputs(replace(request, audio=replace(request.audio, seconds=0.5)))
    with pytest.raises(InputError, match=r"cannot render 1000x500: .* 480p sizes"):
        engine.check_inputs(replace(request, width=1000, height=500))
    asked = engine.check_inputs(replace(request, width=48, height=16))
    assert (asked.width, asked.height) == (48, 16)
    with pytest.raises(InputError, match="talking_head"):
        engine.check_inputs(replace(request, kind="dubbing"))


def test_too_short_audio_fails_the_job_in_words(local_storage, make_settings, engine):
    local_storage.put("a/face.png", samples.portrait_png(64, 64), "image/png")
    local_storage.put("a/face.wav", samples.voice_wav(0.8, rate=16000), "audio/wav")
    settings = make_settings(local_storage, engine_talking_head="longcat-avatar")
    rt = build_runtime(settings, local_storage)
    rt.engine_loader = lambda name: engine
    results = Outcomes()
    tick(rt, InlineDispatcher(rt, results))
    status = json.loads(local_storage.get("a/.dropreel/face/status.json"))
    assert status["state"] == "failed"
    assert "at least 1 s of speech" in status["error"]
    with pytest.raises(ObjectNotFound):  # no partial video
        local_storage.get("a/face.mp4")


def test_recipe_facts_of_the_profiles():
    fast, quality, low = PROFILES["fast"], PROFILES["quality"], PROFILES["low_vram"]
    assert (fast.version, fast.steps, fast.text_guidance, fast.audio_guidance) == (
        "v1.5",
        8,
        1.0,
        1.0,
    )
    assert fast.distill and fast.fps == 25 and fast.audio_stride == 1
    assert (quality.version, quality.steps, quality.fps, quality.audio_stride) == (
        "v1.0",
        50,
        16,
        2,
    )
    assert (quality.text_guidance, quality.audio_guidance) == (4.0, 4.0)
    assert low.offload and low.version == "v1.5"
    assert (fast.segment_frames, fast.cond_frames) == (93, 13)
    assert fast.bucket(832, 480) == (832, 480) and fast.bucket(480, 832) == (480, 832)
    assert fast.segments(93) == 1 and fast.segments(94) == 2 and fast.segments(93 + 80) == 2
    spec = get_spec("longcat-avatar")
    assert spec.kinds == ("talking_head",) and spec.license.startswith("MIT")


def test_reference_masks_noisy_frames_near_its_time_index():
    """Full-size continuation: 1 reference + 4 conditioning + 20 noisy latent frames."""
    layout = FrameLayout(25, 5, ref=1, ref_index=10, mask_range=3)
    assert layout.attention_groups() == [
        ((0, 1), [(0, 1)]),
        ((1, 5), [(1, 5)]),
        ((5, 8), [(0, 25)]),
        ((8, 15), [(1, 25)]),  # noisy frames 3..9 do not see the reference
        ((15, 25), [(0, 25)]),
    ]
    assert FrameLayout(24, 1).attention_groups() == [((0, 1), [(0, 1)]), ((1, 24), [(0, 24)])]


def test_dmd_lora_is_fused_into_its_targets(tiny_weights):
    from safetensors.torch import load_file

    from gpu.longcat.pipeline import fuse_lora, load_transformer

    folder = tiny_weights / "LongCat-Video-Avatar-1.5"
    model = load_transformer(folder / "base_model", torch.float32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert fuse_lora(model, folder / "lora" / "dmd_lora.safetensors") == 2
    raw = load_file(str(folder / "lora" / "dmd_lora.safetensors"))
    name = longcat_tiny.LORA.format(i=0, module="attn___lorahyphen___qkv")
    down = raw[f"{name}.lora_down.weight"]
    expected = torch.cat([raw[f"{name}.lora_up.blocks.{k}.weight"] @ down[2 * k : 2 * k + 2]
                          for k in range(3)])  # fmt: skip
    got = model.state_dict()["blocks.0.attn.qkv.weight"] - before["blocks.0.attn.qkv.weight"]
    assert torch.allclose(got, 0.5 * expected, atol=1e-6)
    unchanged = [k for k in before if torch.equal(before[k], model.state_dict()[k])]
    assert len(unchanged) == len(before) - 2


def test_missing_weights_name_the_fix(tmp_path):
    eng = LongCatAvatarEngine(weights_dir=tmp_path / "empty", device="cpu")
    with pytest.raises(WeightsMissing, match="dropreel weights pull longcat-avatar"):
        eng.load()


@pytest.mark.parametrize("profile", ["fast", "quality", "low_vram"])
def test_loader_opens_exactly_the_pulled_files(tiny_weights, profile):
    from huggingface_hub.utils import filter_repo_objects

    from gpu.weights import sources_for
    from tests.file_opens import opened_files

    matched = set()
    for source in sources_for(get_spec("longcat-avatar"), [profile]):
        folder = tiny_weights / str(source.folder)
        files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
        kept = filter_repo_objects(files, allow_patterns=list(source.patterns))
        matched |= {f"{source.folder}/{f}" for f in kept}
    with opened_files(tiny_weights) as opened:
        LongCatAvatarEngine(weights_dir=tiny_weights, profile=profile, device="cpu").load()
    # Exactly the pulled files; the base repo's scheduler is v1.0's (v1.5 ships its own).
    unread = {"LongCat-Video/scheduler/scheduler_config.json"} if profile != "quality" else set()
    assert opened == matched - unread


def test_sigma_schedules_of_the_reference():
    from gpu.longcat.pipeline import sigmas

    distilled = sigmas(PROFILES["fast"], 8)
    assert distilled == pytest.approx([1 - 125 * k / 999 for k in range(8)])
    full = sigmas(PROFILES["quality"], 50)
    assert len(full) == 50 and full[0] == 1.0 and full[-1] == pytest.approx(0.001)
