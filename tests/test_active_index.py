"""A tick costs what is active: fast ticks read the active index and the folders it says are
due; the sweep finds what the index never heard of and repairs it."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

from handlers.active import ACTIVE_DIR, SWEPT_KEY, entry_key
from handlers.jobs import Job
from handlers.layout import INDEX_DIR
from handlers.storage import Listing, ObjectInfo
from handlers.sweep import by_folder
from infra.local_dispatch import InlineDispatcher
from tests.helpers import Notifications, png, run_tick, runtime, started, wav
from triggers.events.model import ObjectEvent
from triggers.intake import Intake
from triggers.poller import tick


def finished_history(storage, count: int) -> None:
    """Finished prompt.json jobs: the input, the video, status.json, the poster and the done
    marker (a real run also leaves a made-<etag>.json record, left out here)."""
    now = datetime.now(UTC)
    for i in range(count):
        folder = f"old/{i}/"
        body = json.dumps({"prompt": f"scene {i}"}).encode()
        etag = storage.put(folder + "prompt.json", body)
        listed = ObjectInfo(folder + "prompt.json", len(body), etag, now)
        version = Job(folder=folder, stem="prompt", prompt=listed).version
        storage.put(folder + "prompt.mp4", b"mp4")
        for name in ("status.json", "poster.jpg", f"{version}.done"):
            storage.put(f"{folder}.dropreel/prompt/{name}", b"{}")


def index_keys(storage) -> list[str]:
    return [o.key for o in storage.list(INDEX_DIR).objects]


class Counting:
    """LIST and other requests made through a storage, by kind."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.url = inner.url
        self.calls: list[str] = []

    def __getattr__(self, name):
        attr = getattr(self.inner, name)
        if name in ("list", "list_folder", "iter_pages", "get", "put", "put_if_absent", "delete"):
            self.calls.append(name)
        return attr


def test_a_fast_tick_reads_the_index_not_the_history(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    finished_history(storage, 12)
    storage.put("new/ann.png", png())
    storage.put("new/ann.wav", wav())
    settings = make_settings(storage, sweep_seconds=3600)
    counting = Counting(storage)
    rt = runtime(counting, settings, notes)

    first = run_tick(rt)  # no sweep yet: this one sweeps
    assert first.claimed == ["new/ann"] and first.states["done"] == 12
    assert [n["job"] for n in notes.read()] == ["new/ann"]
    assert index_keys(storage)[-1] == SWEPT_KEY

    counting.calls.clear()
    second = run_tick(rt)
    assert second.jobs == 0 and second.requests == 1  # one LIST of the index, nothing due
    assert counting.calls == ["list"]


def test_a_job_the_index_never_heard_of_is_found_by_the_sweep(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage, sweep_seconds=1.0)
    rt = runtime(storage, settings, notes)
    run_tick(rt)  # sweeps an empty root

    storage.put("quiet/bo.png", png())  # no webhook heard of these
    storage.put("quiet/bo.wav", wav())
    assert run_tick(rt).claimed == []  # a fast tick: the index names no folder

    time.sleep(1.2)
    assert run_tick(rt).claimed == ["quiet/bo"]  # the sweep
    assert [n["job"] for n in notes.read()] == ["quiet/bo"]


def test_a_claim_the_webhook_made_is_followed_by_a_fast_tick(s3_storage, make_settings, tmp_path):
    """The webhook claims and dies before rendering; a poller that never sweeps again finds
    the expired lease through the index entry the webhook wrote, and renders the job once."""
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(s3_storage, lease_seconds=2.0, webhook_s3_token="t")
    assert settings.sweep_interval == 3600  # events feed the index: sweep hourly
    poller = runtime(s3_storage, settings, notes)
    run_tick(poller)  # the hourly sweep happens now, on an empty root

    class Dies:  # claims, then the process is gone: no render, no heartbeat
        def dispatch(self, job, lease) -> None:
            pass

    s3_storage.put("hot/cy.png", png())
    s3_storage.put("hot/cy.wav", wav())
    bucket = s3_storage.bucket
    intake = Intake(runtime(s3_storage, settings, notes), Dies())
    assert intake.accept([ObjectEvent(bucket, "inbox/hot/cy.wav", True)]).claimed == 1
    intake.close()
    [entry] = [k for k in index_keys(s3_storage) if k.startswith(ACTIVE_DIR)]
    assert entry.startswith(ACTIVE_DIR + "hot%2F@")

    assert run_tick(poller).taken_back == []  # the lease is fresh: the folder is not due
    time.sleep(2.6)
    report = run_tick(poller)
    assert report.taken_back == ["hot/cy"] and started(poller) == ["hot/cy"]
    assert report.requests <= 8  # index, folder (2 LISTs), lease GET + CAS, entry PUT + DELETE
    assert [n["job"] for n in notes.read()] == ["hot/cy"]


def test_the_sweep_repairs_a_stale_or_garbage_index(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage, sweep_seconds=3600, settle_seconds=30)
    storage.put("slow/di.png", png())
    storage.put("slow/di.wav", wav())  # settling for 30 s
    now = storage.list().server_time
    far = entry_key("slow/", now.replace(year=5000))
    junk = [far, ACTIVE_DIR + "not-an-entry", entry_key("gone/", now)]
    for key in junk:
        storage.put(key, b"")
    rt = runtime(storage, settings, notes)

    report = tick(rt, InlineDispatcher(rt))  # the first tick sweeps
    assert report.states["settling"] == 1 and report.next_ready_in is not None
    entries = [k for k in index_keys(storage) if k.startswith(ACTIVE_DIR)]
    assert len(entries) == 1 and entries[0].startswith(ACTIVE_DIR + "slow%2F@")
    assert entries[0] != far  # due when the settle window ends, not in the year 5000
    assert 25 < run_tick(rt).next_ready_in <= 31  # the fast tick wakes for it


def test_the_sweep_holds_only_the_folders_above_the_current_key():
    """Keys come subtree by subtree; each folder is handed over once, complete, as soon as the
    listing leaves it."""
    keys = [
        "a/.dropreel/x/v.done",
        "a/b/c/deep.png",
        "a/b/c/deep.wav",
        "a/b/side.png",
        "a/x.png",
        "a/x.wav",
        "b/y.png",
        "root.png",
    ]
    now = datetime.now(UTC)
    pages = [Listing([ObjectInfo(k, 1, "e", now)], now, 1) for k in keys]
    seen = []
    for folder, listing in by_folder(iter(pages)):
        seen.append((folder, [o.key for o in listing.objects]))
    assert seen == [
        ("a/b/c/", ["a/b/c/deep.png", "a/b/c/deep.wav"]),
        ("a/b/", ["a/b/side.png"]),
        ("a/", ["a/.dropreel/x/v.done", "a/x.png", "a/x.wav"]),
        ("b/", ["b/y.png"]),
        ("", ["root.png"]),
    ]
