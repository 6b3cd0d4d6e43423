"""InfiniteTalk's video mode (dubbing) with tiny random weights, through the lifecycle on moto.

A 25 fps source video at a bucket's size and a new recording: the dubbed MP4 has the source's
size and rate, as many frames as the audio (4n+1, like every InfiniteTalk video), the new audio
muxed; each clip is conditioned on the source frame where it starts (reference: `wan/multitalk.py`,
`extract_specific_frames(cond_video, audio_start_idx)`), held on the last frame past its end.
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk import pipeline  # noqa: E402
from gpu.infinitetalk.engine import InfiniteTalkEngine, scaled_profiles  # noqa: E402
from infra.cli import samples  # noqa: E402
from infra.wiring import build_runtime  # noqa: E402
from tests.helpers import decode_mp4, run_tick  # noqa: E402
from tests.test_infinitetalk_engine import tiny_weights  # noqa: E402, F401

# 64x64 square bucket (a tenth of 640x640), one step, 17-frame clips with 5 motion frames.
PROFILES = scaled_profiles(0.1, steps=1, clip_frames=17, motion_frames=5, teacache=None)


@pytest.fixture(scope="module")
def engine(tiny_weights) -> InfiniteTalkEngine:  # noqa: F811
    eng = InfiniteTalkEngine(weights_dir=tiny_weights, profiles=PROFILES, device="cpu")
    eng.load()
    return eng


def test_dubbing_renders_in_video_mode_through_the_lifecycle(
    s3_storage, make_settings, engine, tmp_path, monkeypatch
):
    source = samples.talking_video(1.0, fps=25, width=64, height=64)  # 25 frames
    s3_storage.put("dub/scene.mp4", source)
    s3_storage.put("dub/scene.wav", samples.voice_wav(1.5, rate=16000))  # 37 frames of speech
    rt = build_runtime(make_settings(s3_storage, engine_dubbing="infinitetalk"), s3_storage)
    rt.engine_loader = lambda name: engine
    conditioned: list[torch.Tensor] = []
    real = pipeline.encode_clip

    def spy(c, image):
        conditioned.append(image.clone())
        return real(c, image)

    monkeypatch.setattr(pipeline, "encode_clip", spy)
    assert len(run_tick(rt).claimed) == 1

    state = json.loads(s3_storage.get("dub/.dropreel/scene/status.json"))
    assert state["state"] == "done", state
    assert state["kind"] == "dubbing" and state["engine"] == "infinitetalk"
    assert state["settings"]["source"] == "video" and state["settings"]["clips"] == 3
    assert state["output"] == "dub/scene.dropreel.mp4"  # scene.mp4 is the user's source
    video = decode_mp4(s3_storage.get("dub/scene.dropreel.mp4"), tmp_path)
    assert (video.width, video.height, video.fps) == (64, 64, 25.0)  # the source's
    assert video.frames == 37  # as long as the audio (4n+1)
    assert abs(video.audio_seconds - video.frames / 25) <= 1 / 25  # the new audio, muxed
    assert any("follow the video's last frame" in a for a in state["adjustments"])

    # clips start at frames 0, 12 and 24: each is conditioned on that source frame
    src = tmp_path / "scene.mp4"
    src.write_bytes(source)
    with av.open(str(src)) as c:
        frames = [f.to_image() for f in c.decode(video=0)]
    expected = [pipeline.fit_to_bucket(frames[i], 64, 64) for i in (0, 12, 24)]
    assert len(conditioned) == 3
    for got, want in zip(conditioned, expected, strict=True):
        assert torch.equal(got, want)
    assert not torch.equal(conditioned[0], conditioned[1])


def test_a_longer_source_is_cut_at_the_audio_and_a_slower_rate_is_reported(engine, tmp_path):
    from gpu.engine import RenderRequest
    from gpu.media import probe_audio, probe_video

    src = tmp_path / "s.mkv"
    src.write_bytes(samples.talking_video(2.0, fps=24, width=96, height=64, ext="mkv"))
    wav = tmp_path / "v.wav"
    wav.write_bytes(samples.voice_wav(0.6, rate=16000))
    request = RenderRequest(
        kind="dubbing", video=probe_video(src, 600, 10**7), audio=probe_audio(wav, 600)
    )
    plan = engine.check_inputs(request)
    assert (plan.width, plan.height, plan.fps, plan.num_frames) == (64, 48, 25, 13)
    words = " ".join(plan.adjustments)
    assert "ends with the audio" in words and "24 fps dubbed at 25 fps" in words
    frames = list(engine.render(plan))
    assert len(frames) == 13 and all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
