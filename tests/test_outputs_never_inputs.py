"""Issue 14, point 3: an MP4 dropreel wrote never starts a job, and a user's file is never
overwritten; on moto's S3 and the local folder backend alike.

The names (handlers/layout.py): the video is `<stem>.mp4`, or `<stem>.dropreel.mp4` when a file
of the user's already has that name (their own take.mp4, or the video a dubbing job dubs).
"""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from infra.cli import samples
from tests.crashes import Crash, CrashingStorage
from tests.helpers import Notifications, png, prompt, run_tick, runtime, started, status, wav


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


@pytest.fixture
def rt(storage, make_settings, notes):
    return runtime(storage, make_settings(storage), notes)


def rename(storage, old: str, new: str) -> None:
    """What a user's client does: S3 copies then deletes (same ETag); a disk renames in place."""
    if hasattr(storage, "root"):
        os.rename(storage.root / old, storage.root / new)
        return
    storage.client.copy_object(
        Bucket=storage.bucket,
        Key=storage._full(new),
        CopySource={"Bucket": storage.bucket, "Key": storage._full(old)},
    )
    storage.delete(old)


def listed(storage) -> set[str]:
    return {o.key for o in storage.list("").objects}


def talking_head(storage, rt, folder: str = "t/") -> bytes:
    storage.put(f"{folder}take.png", png())
    storage.put(f"{folder}take.wav", wav(0.6))
    assert len(run_tick(rt).claimed) == 1
    return storage.get(f"{folder}take.mp4")


def test_deleting_the_portrait_never_turns_the_video_into_a_dubbing_job(storage, rt, notes):
    video = talking_head(storage, rt)
    storage.delete("t/take.png")  # take.wav and take.mp4 are left: a video and an audio
    report = run_tick(rt)
    assert report.claimed == [] and started(rt) == ["t/take"]
    assert len(notes.read()) == 1 and storage.get("t/take.mp4") == video


def test_a_renamed_output_is_still_an_output(storage, rt, notes):
    talking_head(storage, rt)
    storage.delete("t/take.png")
    rename(storage, "t/take.mp4", "t/final.mp4")
    storage.put("t/final.wav", wav(0.7))  # named like the renamed video
    report = run_tick(rt)
    assert report.claimed == [] and started(rt) == ["t/take"]
    assert not any(k.endswith(".dropreel.mp4") for k in listed(storage))


def test_a_users_own_mp4_beside_the_portrait_is_never_overwritten(storage, rt, notes):
    mine = samples.talking_video(0.4, width=64, height=64)
    storage.put("u/take.mp4", mine)
    storage.put("u/take.png", png())
    storage.put("u/take.wav", wav(0.6))
    assert len(run_tick(rt).claimed) == 1
    assert storage.get("u/take.mp4") == mine
    assert status(storage, "u/.dropreel/take/status.json")["output"] == "u/take.dropreel.mp4"
    assert notes.read()[0]["video_key"] == "u/take.dropreel.mp4"
    first = storage.get("u/take.dropreel.mp4")
    storage.put("u/take.wav", wav(0.8, seed=1))  # a new version renders to the same name
    assert len(run_tick(rt).claimed) == 1
    assert storage.get("u/take.mp4") == mine
    assert storage.get("u/take.dropreel.mp4") != first
    assert started(rt) == ["u/take", "u/take"]


def test_its_own_mp4_is_rewritten_even_if_the_record_after_it_was_lost(storage, rt):
    storage.put("t/take.png", png())
    storage.put("t/take.wav", wav(0.6))
    crashing = CrashingStorage(storage, {"t/take": "after upload"})  # before made-<etag>.json
    with pytest.raises(Crash):
        run_tick(replace(rt, storage=crashing))
    assert "t/take.mp4" in listed(storage)
    assert not any(k.rpartition("/")[2].startswith("made-") for k in listed(storage))
    storage.put("t/take.wav", wav(0.8, seed=2))
    assert len(run_tick(rt).claimed) == 1
    assert "t/take.dropreel.mp4" not in listed(storage)
    assert status(storage, "t/.dropreel/take/status.json")["output"] == "t/take.mp4"


def test_a_text_to_video_output_beside_a_new_recording_is_not_dubbed(storage, rt, notes):
    storage.put("p/prompt.json", prompt("a lighthouse at dusk"))
    assert len(run_tick(rt).claimed) == 1
    storage.put("p/voice.wav", wav(0.6))  # prompt.mp4 + voice.wav: one video, one audio
    assert run_tick(rt).claimed == [] and len(notes.read()) == 1


def test_a_dubbed_video_never_dubs_again(storage, rt, notes):
    storage.put("d/take.mov", samples.talking_video(0.6, width=64, height=64, ext="mov"))
    storage.put("d/take.wav", wav(0.6))
    assert len(run_tick(rt).claimed) == 1
    dubbed = storage.get("d/take.mp4")  # take.mp4 was free: the dub takes the plain name
    storage.delete("d/take.mov")  # take.mp4 + take.wav remain
    assert run_tick(rt).claimed == []
    storage.put("d/take.mov", samples.talking_video(0.6, width=64, height=64, ext="mov", seed=3))
    assert len(run_tick(rt).claimed) == 1  # a new source: a new dub, over dropreel's own file
    assert storage.get("d/take.mp4") != dubbed and "d/take.dropreel.mp4" not in listed(storage)
    assert len(notes.read()) == 2
