"""Two speakers (issue 14, point 4), the folder protocol: one image and `<stem>.speaker1.<ext>` +
`<stem>.speaker2.<ext>` make one talking-head job. Through the real lifecycle with the preview
engine (no torch), on moto and the local folder: the video lasts as the two recordings placed in
turns or together, its sound is their mix, and status.json says where each speaker is."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gpu.two_speakers import Speaking, default_boxes, mixed, placed, timeline_seconds
from infra.cli import samples
from tests.helpers import Notifications, decode_mp4, run_tick, runtime, status, wav


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


def drop(storage, folder: str, first: float, second: float, prompt: dict | None = None) -> None:
    storage.put(f"{folder}/duo.png", samples.portrait_png(120, 80))
    storage.put(f"{folder}/duo.speaker1.wav", wav(first))
    storage.put(f"{folder}/duo.speaker2.wav", wav(second))
    if prompt is not None:
        storage.put(f"{folder}/duo.prompt.json", json.dumps(prompt).encode())


@pytest.mark.parametrize(("speaking", "seconds"), [(None, 1.2), ("together", 1.2), ("turns", 2.0)])
def test_two_voices_make_one_video_of_both(
    storage, make_settings, notes, tmp_path, speaking, seconds
):
    rt = runtime(storage, make_settings(storage), notes)
    drop(storage, "pair", 0.8, 1.2, {"speaking": speaking} if speaking else None)
    report = run_tick(rt)
    assert len(report.claimed) == 1  # one job, not one per recording
    video = decode_mp4(storage.get("pair/duo.mp4"), tmp_path)
    assert video.frames == round(seconds * 25)
    assert abs(video.audio_seconds - seconds) <= 1 / 25  # the mix, as long as the timeline
    state = status(storage, "pair/.dropreel/duo/status.json")
    assert state["state"] == "done" and state["kind"] == "talking_head"
    assert state["settings"]["speaking"] == (speaking or "together")
    assert state["settings"]["speakers"] == [list(b) for b in default_boxes(120, 80)]
    assert {"pair/duo.png", "pair/duo.speaker1.wav", "pair/duo.speaker2.wav"} <= set(
        state["inputs"]
    )


def test_boxes_in_prompt_json_say_where_each_speaker_is(storage, make_settings, notes):
    rt = runtime(storage, make_settings(storage), notes)
    boxes = [[70, 5, 115, 75], [5, 5, 50, 75]]  # speaker 1 on the right this time
    drop(storage, "boxed", 0.6, 0.6, {"speakers": [{"box": b} for b in boxes]})
    run_tick(rt)
    state = status(storage, "boxed/.dropreel/duo/status.json")
    assert state["state"] == "done", state["error"]
    assert state["settings"]["speakers"] == boxes


def test_a_box_outside_the_image_is_refused_in_words(storage, make_settings, notes):
    rt = runtime(storage, make_settings(storage), notes)
    drop(
        storage, "bad", 0.6, 0.6, {"speakers": [{"box": [0, 0, 60, 80]}, {"box": [60, 0, 200, 80]}]}
    )
    run_tick(rt)
    state = status(storage, "bad/.dropreel/duo/status.json")
    assert state["state"] == "failed" and state["fix_by"] == "user"
    assert "speaker 2's box [60, 0, 200, 80] is not inside" in state["error"]


def test_one_speaker_file_alone_waits_for_the_other(storage, make_settings, notes):
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("half/duo.png", samples.portrait_png(120, 80))
    storage.put("half/duo.speaker1.wav", wav(0.6))
    report = run_tick(rt)
    assert report.claimed == []
    assert [o.key for o in storage.list("half/").objects if o.key.endswith(".mp4")] == []


def test_turns_and_together_place_the_recordings_as_the_reference():
    one, two = np.full(3, 0.5, np.float32), np.full(2, 0.25, np.float32)
    first, second = placed(one, two, Speaking.TURNS)  # the reference's "add"
    assert first.tolist() == [0.5, 0.5, 0.5, 0, 0] and second.tolist() == [0, 0, 0, 0.25, 0.25]
    first, second = placed(one, two, Speaking.TOGETHER)  # "para", the shorter padded
    assert first.tolist() == [0.5] * 3 and second.tolist() == [0.25, 0.25, 0]
    assert mixed(one, two, Speaking.TOGETHER).tolist() == [0.75, 0.75, 0.5]
    assert timeline_seconds(2.0, 3.0, Speaking.TURNS) == 5.0
    assert timeline_seconds(2.0, 3.0, Speaking.TOGETHER) == 3.0


def test_two_speakers_and_a_recording_for_one_portrait_are_refused_in_words(
    storage, make_settings, notes
):
    rt = runtime(storage, make_settings(storage), notes)
    drop(storage, "both", 0.6, 0.6)
    storage.put("both/duo.wav", wav(0.6))
    run_tick(rt)
    state = status(storage, "both/.dropreel/duo/status.json")
    assert state["state"] == "failed" and state["fix_by"] == "user"
    assert "duo.wav and duo.speaker1.wav + duo.speaker2.wav both give the speech" in state["error"]
