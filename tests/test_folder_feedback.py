"""Folders whose files make no job get one status.json and one message once the grace period is
over, saying what to do; a finished job never turns back into an incomplete one when files are
added beside it. Through the real lifecycle on S3 (moto) and a local folder, and Slack's fake."""

from __future__ import annotations

from handlers.runtime import Runtime
from infra.notify.fake_slack import FakeSlack
from infra.notify.slack import build_slack_notifier
from tests.helpers import Notifications, png, run_tick, runtime, started, status, wav


def _rt(storage, make_settings, tmp_path, grace: float = 0.0):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage, incomplete_grace_seconds=grace)
    return runtime(storage, settings, notes), notes


def test_an_image_without_audio_is_reported_once_after_the_grace_period(
    storage, make_settings, tmp_path
):
    storage.put("s/al.png", png())
    waiting, notes = _rt(storage, make_settings, tmp_path, grace=300)
    run_tick(waiting)
    assert notes.read() == []  # the audio may still be uploading

    rt, notes = _rt(storage, make_settings, tmp_path)
    run_tick(rt)
    run_tick(rt)
    [note] = notes.read()
    assert note["state"] == "incomplete" and note["job"] == "s/al"
    assert note["error"].startswith("al.png has no audio: add al.mp3")
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "incomplete" and st["fix_by"] == "user"
    assert st["error"] == note["error"] and st["notification"] == "sent"

    storage.put("s/al.wav", wav())  # the user does what it says
    run_tick(rt)
    assert [n["state"] for n in notes.read()] == ["incomplete", "done"]
    assert status(storage, "s/.dropreel/al/status.json")["state"] == "done"


def test_two_images_and_one_audio_get_one_message_naming_them(storage, make_settings, tmp_path):
    rt, notes = _rt(storage, make_settings, tmp_path)
    storage.put("s/bob.png", png())
    storage.put("s/carol.png", png(seed=1))
    storage.put("s/voice.mp3", wav())
    run_tick(rt)
    run_tick(rt)
    [note] = notes.read()
    assert note["error"].startswith(
        "bob.png, carol.png and voice.mp3 are in one folder and no audio is named like an image"
    )
    assert status(storage, "s/.dropreel/voice/status.json")["state"] == "incomplete"
    assert started(rt) == []


def test_unsupported_types_say_what_to_save_them_as(storage, make_settings, tmp_path):
    rt, notes = _rt(storage, make_settings, tmp_path)
    storage.put("s/photo.HEIC", b"heic bytes")
    storage.put("t/al.heic", b"heic bytes")
    storage.put("t/al.wav", wav())
    storage.put("u/clip.mov", b"a video")  # video is not refused here (dubbing takes it)
    run_tick(rt)
    run_tick(rt)
    errors = {n["job"]: n["error"] for n in notes.read()}
    assert errors == {
        "s/photo": "photo.HEIC is an iPhone photo (HEIC), which dropreel cannot read: export "
        "it as JPEG or PNG",
        "t/al": "al.wav has no image: add a portrait al.png (or .jpeg, .jpg, .png, .webp) "
        "beside it; al.heic is an iPhone photo (HEIC), which dropreel cannot read: export it "
        "as JPEG or PNG",
    }


def test_a_finished_job_stays_done_when_files_are_added_beside_it(storage, make_settings, tmp_path):
    rt, notes = _rt(storage, make_settings, tmp_path)
    storage.put("s/portrait.png", png())
    storage.put("s/voice.wav", wav())  # one image, one audio: paired whatever their names
    run_tick(rt)
    storage.put("s/bob.png", png(seed=2))
    storage.put("s/bob.wav", wav(seed=2))
    run_tick(rt)
    storage.put("s/extra.wav", wav(seed=3))
    run_tick(rt)
    run_tick(rt)

    assert started(rt) == ["s/portrait", "s/bob"]
    assert status(storage, "s/.dropreel/portrait/status.json")["state"] == "done"
    states = [(n["job"], n["state"]) for n in notes.read()]
    assert states == [
        ("s/portrait", "done"),
        ("s/bob", "done"),
        ("s/extra", "incomplete"),  # the new file alone is what waits
    ]


def test_the_slack_message_says_what_to_do(make_settings, s3_storage):
    with FakeSlack() as fake:
        settings = make_settings(
            s3_storage,
            incomplete_grace_seconds=0,
            notifier="slack",
            slack_bot_token=fake.token,
            slack_channel="#dropreel",
            slack_base_url=fake.base_url,
        )
        rt = Runtime(s3_storage, settings, build_slack_notifier(settings))
        s3_storage.put("s/al.png", png())
        run_tick(rt)
        run_tick(rt)
        [message] = fake.messages
    text = fake.render(message)
    assert "al cannot start" in text and "al.png has no audio" in text
