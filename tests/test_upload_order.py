"""Upload order never matters; odd keys work; nothing outside the watch root is touched."""

from __future__ import annotations

import time

import pytest

from tests.helpers import Notifications, decode_mp4, png, prompt, run_tick, runtime, status, wav


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


@pytest.mark.parametrize("first", ["image", "audio"])
def test_pair_in_either_order_makes_one_job(storage, make_settings, notes, first, tmp_path):
    rt = runtime(storage, make_settings(storage), notes)
    parts = {"image": ("o/x.png", png()), "audio": ("o/x.mp3.wav", wav(0.6))}
    second = "audio" if first == "image" else "image"
    storage.put(*parts[first])
    report = run_tick(rt)
    assert report.claimed == [] and report.states["incomplete"] == 1
    storage.put(*parts[second])
    report = run_tick(rt)
    assert len(report.claimed) == 1
    assert len(notes.read()) == 1
    assert decode_mp4(storage.get("o/x.mp4"), tmp_path).audio_seconds


def test_prompt_arriving_a_moment_later_joins_the_same_job(storage, make_settings, notes):
    rt = runtime(storage, make_settings(storage, settle_seconds=1.5), notes)
    storage.put("late/face.png", png())
    storage.put("late/face.wav", wav(0.4))
    report = run_tick(rt)
    assert report.claimed == [] and report.states["settling"] == 1
    storage.put("late/prompt.json", prompt("smiling"))
    time.sleep(2.6)
    report = run_tick(rt)
    assert report.claimed == ["late/face"]
    st = status(storage, "late/.dropreel/face/status.json")
    assert sorted(st["inputs"]) == ["late/face.png", "late/face.wav", "late/prompt.json"]
    assert st["kind"] == "talking_head"
    assert len(notes.read()) == 1


KEYS = [
    "with space/my photo.png",
    "plus+sign/a+b.png",
    "ünïcødé/面孔 ✓.png",
    "a/b/c/d/e/f/g/deep.png",
]


@pytest.mark.parametrize("image_key", KEYS)
def test_odd_keys_and_deep_folders(storage, make_settings, notes, image_key, tmp_path):
    audio_key = image_key.rsplit(".", 1)[0] + ".wav"
    storage.put(image_key, png())
    storage.put(audio_key, wav(0.5))
    run_tick(runtime(storage, make_settings(storage), notes))
    out = image_key.rsplit(".", 1)[0] + ".mp4"
    assert decode_mp4(storage.get(out), tmp_path).frames == 13
    assert notes.read()[0]["video_key"] == out


def test_nothing_outside_the_watch_root_is_touched(s3_client, bucket, make_settings, notes):
    from infra.storage.s3 import S3Storage

    for key in ("other/a.png", "other/a.wav", "inboxes/b.png", "inboxes/b.wav", "c.png", "c.wav"):
        s3_client.put_object(
            Bucket=bucket, Key=key, Body=png() if key.endswith("png") else wav(0.5)
        )
    before = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    report = run_tick(runtime(storage, make_settings(storage), notes))
    assert report.jobs == 0
    after = sorted(o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket)["Contents"])
    assert after == before and notes.read() == []
