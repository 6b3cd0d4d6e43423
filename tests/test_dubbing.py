"""Dubbing (issue 14, point 2): a video and an audio file make a video of that person speaking
the new audio. Through the real lifecycle with the preview engine, on moto and the local folder:
frames out at the source's size and rate, the new audio muxed, the length rule of gpu/dubbing.py
(as long as the audio; a shorter source held on its last frame, a longer one cut), and inputs
refused in words when they break the video limits."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from gpu.errors import InputError
from gpu.media import probe_video
from infra.cli import samples
from tests.helpers import Notifications, decode_mp4, run_tick, runtime, status, wav


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


def frame_numbers(data: bytes, tmp: Path) -> list[int]:
    """The frame number samples.talking_video painted into each output frame's top rows."""
    path = tmp / "numbers.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        return [
            round(float(f.to_ndarray(format="rgb24")[2:12].mean()) / 10) for f in c.decode(video=0)
        ]


@pytest.mark.parametrize("ext", ["mp4", "mov", "webm", "mkv"])
def test_a_video_and_an_audio_make_a_dubbed_video(storage, make_settings, notes, tmp_path, ext):
    rt = runtime(storage, make_settings(storage), notes)
    storage.put(f"dub/take.{ext}", samples.talking_video(1.0, fps=24, width=96, height=64, ext=ext))
    storage.put("dub/take.wav", wav(1.5))  # half a second longer than the video
    report = run_tick(rt)
    assert len(report.claimed) == 1
    out = "dub/take.dropreel.mp4" if ext == "mp4" else "dub/take.mp4"  # never over the source
    video = decode_mp4(storage.get(out), tmp_path)
    assert (video.width, video.height, video.fps) == (96, 64, 24.0)  # the source's size and rate
    assert video.frames == 36  # 1.5 s of audio at 24 fps: as long as the audio
    assert abs(video.audio_seconds - 1.5) <= 1 / 24  # the new audio, muxed
    numbers = frame_numbers(storage.get(out), tmp_path)
    assert numbers[:24] == list(range(24))  # the source's own frames, in step
    assert set(numbers[24:]) == {23}  # held on the last frame once the video ends
    state = status(storage, "dub/.dropreel/take/status.json")
    assert state["state"] == "done" and state["kind"] == "dubbing"
    assert state["output"] == out
    assert any("follow the video's last frame" in a for a in state["adjustments"])
    assert notes.read()[0]["kind"] == "dubbing"


def test_a_longer_video_is_cut_where_the_audio_ends(storage, make_settings, notes, tmp_path):
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("cut/scene.mov", samples.talking_video(1.2, fps=25, width=64, height=64))
    storage.put("cut/new-voice.wav", wav(0.6))  # one video + one audio pair whatever their names
    assert len(run_tick(rt).claimed) == 1
    video = decode_mp4(storage.get("cut/scene.mp4"), tmp_path)
    assert video.frames == 15 and (video.width, video.height) == (64, 64)
    assert frame_numbers(storage.get("cut/scene.mp4"), tmp_path) == list(range(15))
    state = status(storage, "cut/.dropreel/scene/status.json")
    assert any("ends with the audio" in a for a in state["adjustments"])


def test_a_video_alone_is_not_a_job(storage, make_settings, notes):
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("lone/clip.mp4", samples.talking_video(0.5, width=64, height=64))
    report = run_tick(rt)
    assert report.claimed == [] and not any(report.states.values())


@pytest.mark.parametrize(
    ("settings", "make", "words"),
    [
        ({"max_video_seconds": 1.0}, lambda: samples.talking_video(2.0, 25, 64, 64), "limit"),
        ({"max_video_pixels": 64 * 64}, lambda: samples.talking_video(0.4, 25, 96, 64), "pixels"),
        ({}, lambda: b"just some text, not a video", "is not a video file (it holds text)"),
        ({}, lambda: samples.talking_video(1.0, 25, 64, 64)[:3000], "no video stream"),
    ],
)
def test_videos_past_the_limits_are_refused_in_words(
    storage, make_settings, notes, settings, make, words
):
    rt = runtime(storage, make_settings(storage, **settings), notes)
    data = make()
    storage.put("bad/take.mp4", data)
    storage.put("bad/take.wav", wav(0.6))
    run_tick(rt)
    state = status(storage, "bad/.dropreel/take/status.json")
    assert state["state"] == "failed" and state["fix_by"] == "user"
    assert "take.mp4" in state["error"] and words in state["error"]
    assert storage.get("bad/take.mp4") == data  # the user's file, untouched


def test_probe_reads_size_rate_and_frames(tmp_path):
    path = tmp_path / "v.webm"
    path.write_bytes(samples.talking_video(0.8, fps=30, width=80, height=64, ext="webm"))
    info = probe_video(path, 600, 10**7)
    assert (info.width, info.height, info.fps, info.frames) == (80, 64, 30, 24)
    assert info.seconds == pytest.approx(0.8)
    with pytest.raises(InputError, match="at least 64"):
        small = tmp_path / "s.mp4"
        small.write_bytes(samples.talking_video(0.2, width=48, height=48))
        probe_video(small, 600, 10**7)
    frames = list(info.frames_at([0, 0, 5, 99]))
    every = list(info.rgb_frames())
    assert len(frames) == 4 and np.array_equal(frames[-1], every[-1])
    assert all(np.array_equal(a, every[i]) for a, i in zip(frames[:3], (0, 0, 5), strict=True))
