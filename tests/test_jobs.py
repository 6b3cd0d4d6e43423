"""Pairing, routing, versions and states, decided from a listing alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import get_args

from config.kinds import JobKind
from handlers.jobs import Phase, discover
from handlers.prompt import Task
from handlers.storage import ObjectInfo

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def obj(key: str, age: float = 100, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(key, 10, etag, T0 - timedelta(seconds=age))


def jobs_of(*objects: ObjectInfo, settle: float = 5, lease: float = 60):
    return {j.name: j for j in discover(objects, T0, settle, lease)}


def test_lone_image_and_audio_pair_whatever_their_names():
    jobs = jobs_of(obj("f/face.PNG"), obj("f/voice take 2.mp3"))
    assert list(jobs) == ["f/face"]
    job = jobs["f/face"]
    assert job.kind == "talking_head" and job.phase is Phase.READY
    assert job.output_key == "f/face.mp4"


def test_several_jobs_share_a_folder_by_stem():
    jobs = jobs_of(obj("f/alice.png"), obj("f/alice.wav"), obj("f/bob.jpg"), obj("f/bob.m4a"))
    assert {n: j.kind for n, j in jobs.items()} == {
        "f/alice": "talking_head",
        "f/bob": "talking_head",
    }
    assert jobs["f/alice"].audio.key == "f/alice.wav"


def test_prompt_routes_text_and_image_to_video():
    jobs = jobs_of(obj("t2v/prompt.json"), obj("i2v/cat.webp"), obj("i2v/prompt.json"))
    assert jobs["t2v/prompt"].kind == "text_to_video"
    assert jobs["i2v/cat"].kind == "image_to_video"
    assert jobs["i2v/cat"].prompt.key == "i2v/prompt.json"


def test_stem_prompt_and_talking_head_prompt():
    jobs = jobs_of(obj("f/a.png"), obj("f/a.wav"), obj("f/a.prompt.json"), obj("f/b.prompt.json"))
    assert jobs["f/a"].kind == "talking_head" and jobs["f/a"].prompt.key == "f/a.prompt.json"
    assert jobs["f/b"].kind == "text_to_video"


def test_folder_prompt_beside_stem_prompts_is_a_job_of_its_own():
    """With no image or audio in the folder, prompt.json is its own text-to-video job, as the
    README says, even beside x.prompt.json (it used to vanish)."""
    jobs = jobs_of(obj("f/prompt.json"), obj("f/x.prompt.json"))
    assert {n: j.kind for n, j in jobs.items()} == {
        "f/prompt": "text_to_video",
        "f/x": "text_to_video",
    }
    assert jobs["f/prompt"].prompt.key == "f/prompt.json"
    assert jobs["f/x"].prompt.key == "f/x.prompt.json"
    # beside media it stays what it was: the prompt of every job without its own
    jobs = jobs_of(obj("g/prompt.json"), obj("g/x.prompt.json"), obj("g/cat.png"))
    assert {n: j.prompt.key for n, j in jobs.items()} == {
        "g/cat": "g/prompt.json",
        "g/x": "g/x.prompt.json",
    }


def test_an_image_beside_several_unnamed_audios_is_one_job_holding_them():
    jobs = jobs_of(obj("f/face.png"), obj("f/take 1.wav"), obj("f/take 2.mp3"))
    assert list(jobs) == ["f/face"]
    job = jobs["f/face"]
    assert job.kind == "talking_head" and job.phase is Phase.READY  # claimed, then refused
    assert [o.key for o in job.unpaired] == ["f/take 1.wav", "f/take 2.mp3"]
    assert job.audio is None
    renamed = jobs_of(obj("f/face.png"), obj("f/face.wav"), obj("f/take 2.mp3"))
    assert renamed["f/face"].audio.key == "f/face.wav" and not renamed["f/face"].unpaired
    assert renamed["f/take 2"].phase is Phase.INCOMPLETE
    assert renamed["f/face"].version != job.version
    # an image that a prompt.json makes a job of its own is left alone
    with_prompt = jobs_of(obj("g/face.png"), obj("g/a.wav"), obj("g/b.wav"), obj("g/prompt.json"))
    assert with_prompt["g/face"].kind == "image_to_video" and not with_prompt["g/face"].unpaired
    # two images and two audios, none named alike: each waits for its partner
    pairs = jobs_of(obj("h/a.png"), obj("h/b.png"), obj("h/c.wav"), obj("h/d.wav"))
    assert {j.phase for j in pairs.values()} == {Phase.INCOMPLETE} and len(pairs) == 4


def test_incomplete_and_ignored_files():
    jobs = jobs_of(obj("f/only.png"), obj("g/notes.txt"), obj("g/.hidden.png"), obj("h/movie.mp4"))
    assert list(jobs) == ["f/only"]
    assert jobs["f/only"].phase is Phase.INCOMPLETE and jobs["f/only"].kind is None


def test_settle_window_uses_the_newest_input():
    jobs = jobs_of(obj("f/a.png", age=100), obj("f/a.wav", age=2), settle=5)
    assert jobs["f/a"].phase is Phase.SETTLING
    assert jobs["f/a"].ready_at == T0 + timedelta(seconds=3)


def test_version_changes_with_any_input_etag():
    v1 = jobs_of(obj("f/a.png"), obj("f/a.wav"))["f/a"].version
    v2 = jobs_of(obj("f/a.png"), obj("f/a.wav", etag="e2"))["f/a"].version
    assert v1 != v2 and len(v1) == 16


def test_state_comes_from_marker_names_and_last_modified():
    base = [obj("f/a.png"), obj("f/a.wav")]
    version = jobs_of(*base)["f/a"].version
    meta = f"f/.dropreel/a/{version}"
    assert jobs_of(*base, obj(meta + ".lease", age=10))["f/a"].phase is Phase.RUNNING
    assert jobs_of(*base, obj(meta + ".lease", age=100))["f/a"].phase is Phase.EXPIRED
    assert jobs_of(*base, obj(meta + ".lease"), obj(meta + ".done"))["f/a"].phase is Phase.DONE
    assert jobs_of(*base, obj(meta + ".failed"))["f/a"].phase is Phase.FAILED
    old = jobs_of(*base, obj("f/.dropreel/a/0000000000000000.done"))["f/a"]
    assert old.phase is Phase.READY
    assert old.stale_marker_keys() == ["f/.dropreel/a/0000000000000000.done"]


def test_metadata_and_outputs_are_never_inputs():
    jobs = jobs_of(
        obj("f/a.png"),
        obj("f/a.wav"),
        obj("f/a.mp4"),
        obj("f/.dropreel/a/poster.jpg"),
        obj("f/.dropreel/a/status.json"),
        obj(".dropreel/x/prompt.json"),
    )
    assert list(jobs) == ["f/a"]
    assert [o.key for o in jobs["f/a"].inputs] == ["f/a.png", "f/a.wav"]


def test_root_folder_and_deep_folders():
    jobs = jobs_of(obj("a.png"), obj("a.ogg"), obj("x/y/z/w/b.jpeg"), obj("x/y/z/w/b.flac"))
    assert set(jobs) == {"a", "x/y/z/w/b"}
    assert jobs["a"].folder == "" and jobs["x/y/z/w/b"].folder == "x/y/z/w/"


def test_prompt_task_names_the_same_kinds_as_the_listing():
    assert set(get_args(Task)) == set(JobKind)
