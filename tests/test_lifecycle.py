"""Files dropped in a folder become a decodable MP4 next to them, with status and notification."""

from __future__ import annotations

import math

import pytest

from tests.helpers import (
    Notifications,
    decode_mp4,
    png,
    prompt,
    run_tick,
    runtime,
    started,
    status,
    wav,
)


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


def test_talking_head_pair_becomes_mp4_with_audio(storage, make_settings, notes, tmp_path):
    storage.put("clients/acme/alice.png", png(90, 70))
    storage.put("clients/acme/alice.wav", wav(1.3))
    rt = runtime(storage, make_settings(storage), notes)
    report = run_tick(rt)
    assert report.claimed == ["clients/acme/alice"]

    info = decode_mp4(storage.get("clients/acme/alice.mp4"), tmp_path)
    assert info.codec == "h264"
    assert (info.width, info.height, info.fps) == (90, 70, 25.0)
    assert info.frames == math.ceil(1.3 * 25)
    assert abs(info.duration - 1.3) <= 1 / 25
    assert (
        info.audio_seconds is not None and abs(info.audio_seconds - info.duration) <= 1 / 25 + 0.03
    )

    st = status(storage, "clients/acme/.dropreel/alice/status.json")
    assert st["state"] == "done" and st["engine"] == "preview" and st["preview"] is True
    assert st["video"]["frames"] == info.frames
    assert set(st["timings"]) >= {"download", "validate", "render", "upload", "notify"}
    assert storage.get("clients/acme/.dropreel/alice/poster.jpg")[:2] == b"\xff\xd8"
    [note] = notes.read()
    assert note["state"] == "done" and note["job"] == "clients/acme/alice" and note["preview"]


def test_prompt_json_becomes_a_prompt_card(storage, make_settings, notes, tmp_path):
    storage.put("ideas/prompt.json", prompt("lanterns over a lake", duration_seconds=1.5, fps=12))
    run_tick(runtime(storage, make_settings(storage), notes))
    info = decode_mp4(storage.get("ideas/prompt.mp4"), tmp_path)
    assert (info.frames, info.fps) == (18, 12.0)
    assert info.audio_seconds is None
    assert notes.read()[0]["kind"] == "text_to_video"


def test_image_plus_prompt_is_image_to_video(storage, make_settings, notes, tmp_path):
    storage.put("i2v/cat.jpg", png(120, 80))
    storage.put("i2v/prompt.json", prompt("the cat blinks", duration_seconds=1))
    run_tick(runtime(storage, make_settings(storage), notes))
    info = decode_mp4(storage.get("i2v/cat.mp4"), tmp_path)
    assert (info.width, info.height, info.frames) == (120, 80, 24)
    assert notes.read()[0]["kind"] == "image_to_video"


def test_second_tick_does_nothing_for_a_finished_job(storage, make_settings, notes):
    storage.put("f/a.png", png())
    storage.put("f/a.wav", wav(0.5))
    rt = runtime(storage, make_settings(storage), notes)
    run_tick(rt)
    report = run_tick(rt)
    assert report.claimed == [] and report.states["done"] == 1
    assert report.requests == 1  # one LIST page, no GET or HEAD for the finished job
    assert len(notes.read()) == 1 and started(rt) == ["f/a"]


def test_replacing_an_input_renders_again_once(storage, make_settings, notes):
    storage.put("f/a.png", png(seed=1))
    storage.put("f/a.wav", wav(0.5))
    rt = runtime(storage, make_settings(storage), notes)
    run_tick(rt)
    first = storage.get("f/a.mp4")
    storage.put("f/a.png", png(seed=2))
    run_tick(rt)
    run_tick(rt)
    assert started(rt) == ["f/a", "f/a"]
    assert storage.get("f/a.mp4") != first
    assert [n["state"] for n in notes.read()] == ["done", "done"]
    markers = [o.key for o in storage.list("f/.dropreel/").objects if o.key.endswith(".done")]
    assert len(markers) == 1  # the old version's markers were cleaned up


def test_bad_prompt_fails_once_in_plain_words(storage, make_settings, notes):
    storage.put("f/prompt.json", b'{"prompt": "x", "colour": "red"}')
    rt = runtime(storage, make_settings(storage), notes)
    run_tick(rt)
    run_tick(rt)
    st = status(storage, "f/.dropreel/prompt/status.json")
    assert st["state"] == "failed"
    assert "unknown field 'colour'" in st["error"]
    assert [n["state"] for n in notes.read()] == ["failed"]
    assert started(rt) == ["f/prompt"]
    assert not any(o.key.endswith(".mp4") for o in storage.list().objects)
