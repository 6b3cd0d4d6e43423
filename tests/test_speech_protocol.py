"""Script jobs in the listing: which files make a spoken talking head, and what is refused."""

from __future__ import annotations

import pytest

from handlers import layout
from handlers.jobs import Phase
from tests.helpers import (
    Notifications,
    png,
    prompt,
    run_tick,
    runtime,
    status,
    wav,
)
from tests.test_jobs import jobs_of, obj


def test_a_folder_script_speaks_for_every_portrait():
    jobs = jobs_of(obj("f/alice.png"), obj("f/bob.jpg"), obj("f/script.txt"))
    assert {n: (j.kind, j.script.key) for n, j in jobs.items()} == {
        "f/alice": ("talking_head", "f/script.txt"),
        "f/bob": ("talking_head", "f/script.txt"),
    }
    assert all(j.phase is Phase.READY for j in jobs.values())


def test_a_stem_script_wins_over_the_folder_script_and_a_recording_keeps_its_pair():
    jobs = jobs_of(
        obj("f/alice.png"),
        obj("f/alice.script.txt"),
        obj("f/bob.png"),
        obj("f/bob.mp3"),
        obj("f/carol.png"),
        obj("f/script.txt"),
    )
    assert jobs["f/alice"].script.key == "f/alice.script.txt"
    assert jobs["f/bob"].script is None and jobs["f/bob"].audio.key == "f/bob.mp3"
    assert jobs["f/carol"].script.key == "f/script.txt"


def test_a_voice_sample_is_never_the_recording_to_lip_sync():
    # one image + one voice sample: not a lone pair, nothing to render yet
    jobs = jobs_of(obj("f/alice.png"), obj("f/alice.voice.wav"))
    assert jobs["f/alice"].kind is None and jobs["f/alice"].audio is None
    jobs = jobs_of(obj("f/alice.png"), obj("f/alice.VOICE.mp3"), obj("f/alice.script.txt"))
    job = jobs["f/alice"]
    assert job.kind == "talking_head" and job.voice.key == "f/alice.VOICE.mp3"
    assert job.audio is None


def test_the_speech_written_next_to_the_video_is_never_an_input():
    before = jobs_of(obj("f/alice.png"), obj("f/script.txt"))["f/alice"]
    after = jobs_of(
        obj("f/alice.png"), obj("f/script.txt"), obj("f/alice.speech.wav"), obj("f/alice.mp4")
    )
    assert list(after) == ["f/alice"] and after["f/alice"].version == before.version
    assert layout.input_type("alice.speech.wav") is None
    assert layout.input_type("alice.speech.WAV") is None
    assert layout.speech_key("f/", "alice") == "f/alice.speech.wav"


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


def _run(storage, make_settings, notes, files: dict[str, bytes], **settings) -> None:
    for key, data in files.items():
        storage.put(key, data)
    run_tick(runtime(storage, make_settings(storage, **settings), notes))


@pytest.mark.parametrize(
    ("files", "says"),
    [
        (
            {"f/alice.png": png(), "f/alice.wav": wav(), "f/alice.script.txt": b"Hello."},
            "alice.wav is a recording and alice.script.txt a script for the same portrait",
        ),
        (
            {"f/alice.png": png(), "f/alice.wav": wav(), "f/prompt.json": prompt(speech="Hi.")},
            'alice.wav is a recording and the "speech" field of prompt.json a script',
        ),
        ({"f/alice.png": png(), "f/script.txt": b" \n\t\n"}, "script.txt is empty"),
        (
            {"f/alice.png": png(), "f/script.txt": b"Hello\x00\x01\x02 there"},
            "script.txt holds binary data",
        ),
        ({"f/alice.png": png(), "f/script.txt": b"\xff\xfe\x00\x01"}, "script.txt is not UTF-8"),
        (
            {"f/alice.png": png(), "f/script.txt": b"Hi.", "f/prompt.json": b'{"voice": "x"}'},
            "speech-preview has no voice 'x'; its voices are low, high",
        ),
        (
            {
                "f/alice.png": png(),
                "f/script.txt": b"Hi.",
                "f/prompt.json": b'{"language": "xx"}',
            },
            "does not speak language 'xx'",
        ),
        (
            {"f/alice.png": png(), "f/alice.wav": wav(), "f/alice.voice.wav": wav()},
            "alice.voice.wav is a voice sample for a script, but 'alice' has no script",
        ),
        (
            {"f/alice.prompt.json": prompt(speech="Hi.")},
            "gives text to speak, but there is no portrait to speak it",
        ),
    ],
    ids=[
        "script+recording",
        "speech+recording",
        "empty",
        "binary",
        "not-utf8",
        "unknown-voice",
        "unknown-language",
        "voice-without-script",
        "speech-without-portrait",
    ],
)
def test_refusals_say_what_to_fix(storage, make_settings, notes, files, says):
    _run(storage, make_settings, notes, files)
    st = status(storage, "f/.dropreel/alice/status.json")
    assert st["state"] == "failed" and says in st["error"], st["error"]
    keys = {o.key for o in storage.list("f/").objects}
    assert "f/alice.mp4" not in keys and "f/alice.speech.wav" not in keys
    [note] = notes.read()
    assert note["state"] == "failed"
