"""Every job fails alone: a poison job beside healthy ones never stops the tick.

The poison here is a name whose input keys are legal but whose metadata keys pass the store's
1,024-byte key limit (moto does not enforce the limit, so both backends check it themselves,
the same way). Each test runs on moto over HTTP and on the local backend.
"""

from __future__ import annotations

import logging

from handlers.layout import short_meta_stem
from infra.local_dispatch import InlineDispatcher
from tests.helpers import Notifications, Outcomes, png, runtime, status, wav
from triggers.poller import tick

# Four 200-byte folders (a local file name may be at most 255 bytes) and a 200-byte stem of
# two-byte characters: the inputs are 1,014 bytes with the S3 prefix, their markers 1,044.
DEEP = "d" * 200 + "/"
LONG_FOLDER = DEEP * 4
LONG_STEM = "é" * 100
# A folder so long that even the short metadata name does not fit (stem "face").
TOO_DEEP = DEEP * 4 + "e" * 190 + "/"


def drop(storage, folder: str, stem: str = "face") -> None:
    storage.put(f"{folder}{stem}.png", png())
    storage.put(f"{folder}{stem}.wav", wav())


def test_a_name_too_long_for_its_markers_fails_alone(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    drop(storage, "a/")
    drop(storage, LONG_FOLDER, LONG_STEM)
    drop(storage, "z/")
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)

    report = tick(rt, dispatcher)

    poison = LONG_FOLDER + LONG_STEM
    assert results == {"a/face": "done", "z/face": "done"}
    assert report.failed == [poison]
    assert storage.get("a/face.mp4")[4:8] == b"ftyp"
    assert storage.get("z/face.mp4")[4:8] == b"ftyp"
    meta = f"{LONG_FOLDER}.dropreel/{short_meta_stem(LONG_STEM)}/"
    refused = status(storage, meta + "status.json")
    assert refused["state"] == "failed"
    assert refused["job"] == poison
    assert "too long" in refused["error"]
    assert "1,024 bytes" in refused["error"]
    assert "Rename the files" in refused["error"]
    failed = [n for n in notes.read() if n["state"] == "failed"]
    assert [n["job"] for n in failed] == [poison]
    keys = {o.key for o in storage.list().objects}
    assert sum(k.endswith(".failed") for k in keys) == 1
    assert not any(k.startswith(LONG_FOLDER) and k.endswith(".mp4") for k in keys)

    for _ in range(2):  # later ticks see the job failed and leave it alone
        again = tick(rt, dispatcher)
        assert not again.claimed and not again.failed and not again.errors
    assert len(notes.read()) == 3


def test_a_job_whose_metadata_cannot_be_written_anywhere_is_skipped(
    storage, make_settings, tmp_path, caplog
):
    """Even the short metadata name is too long under this folder: the job is logged in one
    line and skipped, every tick; the jobs around it still render."""
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    drop(storage, "a/")
    drop(storage, TOO_DEEP)
    drop(storage, "z/")
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)

    with caplog.at_level(logging.ERROR, logger="handlers.reconcile"):
        report = tick(rt, dispatcher)
        again = tick(rt, dispatcher)

    assert results == {"a/face": "done", "z/face": "done"}
    assert report.errors == again.errors == [TOO_DEEP + "face"]
    skipped = [r for r in caplog.records if r.name == "handlers.reconcile"]
    assert len(skipped) == 2
    assert all("KeyTooLong" in r.getMessage() and r.exc_info is None for r in skipped)
    assert [n["job"] for n in notes.read()] == ["a/face", "z/face"]


def test_the_webhook_intake_contains_a_poison_folder(s3_storage, make_settings, tmp_path):
    """One request names a healthy folder and a folder whose job cannot be stored: the healthy
    job is claimed and rendered, the request does not fail, and the poison is logged."""
    from triggers.events.model import ObjectEvent
    from triggers.intake import Intake

    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(s3_storage, make_settings(s3_storage), notes)
    drop(s3_storage, TOO_DEEP)
    drop(s3_storage, "z/")
    results = Outcomes()
    intake = Intake(rt, InlineDispatcher(rt, results))
    events = [
        ObjectEvent(s3_storage.bucket, f"inbox/{folder}face.png", True)
        for folder in (TOO_DEEP, "z/")
    ]
    try:
        report = intake.accept(events)
    finally:
        intake.close()
    assert report.folders == 2 and report.claimed == 1
    assert results == {"z/face": "done"}
