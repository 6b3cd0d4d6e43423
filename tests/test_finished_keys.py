"""Issue 18, Deliver 5: a finished job leaves only the keys its user reads or that keep it
finished: on moto's S3 and the local folder backend alike.

What stays (handlers/layout.py): the video, status.json, the poster, the version's done marker
and the made-<etag>.json record that keeps the video from ever being taken for an input.
The writing record only guards the moment between its write and the video's made record; the
job's index entry is gone once the folder was looked at again, and the lease (kept so that a claim
from an older listing fails without a read) once its marker is ten minutes old.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from handlers import claims
from handlers.active import ACTIVE_DIR, SWEPT_KEY
from handlers.claims import read_lease, take_back
from handlers.jobs import Job, discover
from handlers.lifecycle import complete
from handlers.storage import ObjectInfo
from infra.cli import samples
from tests.crashes import Crash, CrashingStorage
from tests.helpers import Notifications, png, prompt, run_tick, runtime, started, wav
from tests.test_outputs_never_inputs import rename
from triggers.poller import tick


def listed(storage) -> set[str]:
    return {o.key for o in storage.list("").objects}


def only_dropreels(keys: set[str], inputs: set[str]) -> set[str]:
    return {key for key in keys if key not in inputs and key != SWEPT_KEY}


def test_a_finished_job_leaves_five_keys_of_its_own(storage, make_settings, tmp_path, monkeypatch):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage, sweep_seconds=3600), notes)
    storage.put("p/prompt.json", prompt("a lighthouse at dusk"))
    assert len(run_tick(rt).claimed) == 1  # the first tick sweeps: no sweep marker yet
    assert any(key.startswith(ACTIVE_DIR) for key in listed(storage))  # looked at once more

    tick(rt, None, full=True)  # the folder's next look: nothing is in flight there any more

    (prompt_obj,) = [o for o in storage.list("p/").objects if o.key == "p/prompt.json"]
    version = Job(folder="p/", stem="prompt", prompt=prompt_obj).version
    etag = next(o.etag for o in storage.list("p/").objects if o.key == "p/prompt.mp4")
    five = {
        "p/prompt.mp4",
        "p/.dropreel/prompt/status.json",
        "p/.dropreel/prompt/poster.jpg",
        f"p/.dropreel/prompt/{version}.done",
        f"p/.dropreel/prompt/made-{etag.strip(chr(34))}.json",
    }
    lease = f"p/.dropreel/prompt/{version}.lease"  # kept a while: claims.py, "kept lease"
    assert only_dropreels(listed(storage), {"p/prompt.json"}) == five | {lease}

    monkeypatch.setattr(claims, "KEEP_DECIDED_LEASE_SECONDS", 0.0)  # as if it were 10 min later
    monkeypatch.setattr(claims, "FRESH_LISTING_SECONDS", -1.0)
    tick(rt, None, full=True)  # the hourly sweep (or any look at the folder) lets it go
    assert only_dropreels(listed(storage), {"p/prompt.json"}) == five
    assert len(notes.read()) == 1


def test_the_video_stays_dropreels_once_only_its_record_names_it(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("t/take.png", png())
    storage.put("t/take.wav", wav(0.6))
    assert len(run_tick(rt).claimed) == 1
    assert not [key for key in listed(storage) if "/writing" in key]

    storage.delete("t/take.png")  # a video and an audio are left, then the video renamed
    rename(storage, "t/take.mp4", "t/final.mp4")
    storage.put("t/final.wav", wav(0.7))
    assert run_tick(rt).claimed == [] and started(rt) == ["t/take"]
    assert len(notes.read()) == 1


def test_a_users_own_mp4_dropped_after_the_video_was_deleted_is_theirs(
    storage, make_settings, tmp_path
):
    """A writing record left behind says 'any <stem>.mp4 not older than me is dropreel's' for ever,
    so a take.mp4 the user dropped later (after deleting dropreel's) was hidden: never dubbed,
    never protected from being overwritten."""
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("d/take.png", png())
    storage.put("d/take.wav", wav(0.6))
    assert len(run_tick(rt).claimed) == 1
    storage.delete("d/take.mp4")
    storage.delete("d/take.png")
    mine = samples.talking_video(0.6, width=64, height=64)
    storage.put("d/take.mp4", mine)  # their own video beside the recording: a dubbing job
    report = run_tick(rt)
    assert len(report.claimed) == 1 and started(rt) == ["d/take", "d/take"]
    assert storage.get("d/take.mp4") == mine
    assert "d/take.dropreel.mp4" in listed(storage)


def test_an_older_version_finishing_late_leaves_the_newer_videos_record(
    storage, make_settings, tmp_path
):
    """The video's first record is per version: a render of an older version that finishes
    (its holder stalled) while a newer one is between its record and its video's made record
    cannot take the newer video's record away, so that video is never taken for the user's."""
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("t/take.png", png())
    storage.put("t/take.wav", wav(0.6))
    stalled = CrashingStorage(storage, {"t/take": "after the lease turned final"})
    with pytest.raises(Crash):
        run_tick(replace(rt, storage=stalled))  # version 1 decided, its holder stalls
    (old,) = discover(storage.list("t/").objects, datetime.now(UTC), 0, 30)

    storage.put("t/take.wav", wav(0.8, seed=1))  # version 2, cut off before its made record
    with pytest.raises(Crash):
        run_tick(replace(rt, storage=CrashingStorage(storage, {"t/take": "after upload"})))
    lease = take_back(storage, old, 1, final=read_lease(storage, old).final)
    complete(rt, old, lease)  # version 1's holder wakes up and finishes

    (job,) = discover(storage.list("t/").objects, datetime.now(UTC), 0, 30)
    assert job.version != old.version and not job.output_taken  # take.mp4 is still dropreel's


def test_a_writing_record_from_before_it_was_per_version_still_counts():
    """A bucket left by an earlier dropreel: `writing.json` (a render cut off before its made
    record) still makes the <stem>.mp4 after it dropreel's."""
    at = datetime(2026, 1, 1, tzinfo=UTC)
    objects = [
        ObjectInfo("t/.dropreel/take/writing.json", 2, "w", at),
        ObjectInfo("t/take.mp4", 9, "v", at),
        ObjectInfo("t/take.png", 9, "p", at),
        ObjectInfo("t/take.wav", 9, "a", at),
    ]
    (job,) = discover(objects, at, 0, 30)
    assert not job.output_taken
