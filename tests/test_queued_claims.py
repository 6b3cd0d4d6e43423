"""A claim never expires while its job waits, and a stale run writes nothing.

A watcher claims a batch at once; with one worker most of it waits in the pool's queue for
longer than a lease lives. The queued claims must stay alive (no take-back, no extra attempt),
and a run whose lease was taken back while it waited must not touch the bucket at all.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from gpu.registry import ENGINES
from handlers.claims import claim, take_back
from handlers.errors import ObjectNotFound
from handlers.jobs import discover
from handlers.lifecycle import RunOutcome
from infra.local_dispatch import PoolDispatcher
from tests.helpers import Notifications, Outcomes, png, runtime, started, status, wav
from tests.slow_engine import SPEC
from triggers.poller import watch

JOBS = 10
LEASE = 2.0


@pytest.fixture(autouse=True)
def slow_engine(monkeypatch):
    monkeypatch.setitem(ENGINES, SPEC.name, SPEC)
    monkeypatch.setenv("SLOW_ENGINE_FRAME_DELAY", "0.04")  # 20 frames: about 1 s per render


def wait_for_notes(notes: Notifications, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while len(notes.read()) < count and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.slow
def test_a_batch_queued_behind_one_worker_renders_each_job_once_at_attempt_1(
    s3_storage, make_settings, tmp_path
):
    storage = s3_storage
    notes = Notifications(tmp_path / "notes.jsonl")
    for i in range(JOBS):
        storage.put(f"batch/clip{i}.png", png(64, 64, seed=i))
        storage.put(f"batch/clip{i}.wav", wav(0.8, seed=i))
    settings = make_settings(
        storage,
        lease_seconds=LEASE,
        heartbeat_seconds=0.3,
        poll_seconds=0.2,
        workers=1,
        engine_talking_head=SPEC.name,
    )
    rt = runtime(storage, settings, notes)
    dispatcher = PoolDispatcher(rt, workers=1)
    stop = threading.Event()
    watcher = threading.Thread(target=watch, args=(rt, dispatcher, settings.poll_seconds, stop))
    began = time.monotonic()
    watcher.start()
    try:
        wait_for_notes(notes, JOBS, timeout=120)
        rendered = time.monotonic() - began
        time.sleep(2 * LEASE)  # a late take-back or a second message would show up by now
    finally:
        stop.set()
        watcher.join(timeout=30)
        dispatcher.wait()
        dispatcher.close()
    assert rendered > 3 * LEASE, f"the batch took {rendered:.1f} s: shorter than 3 leases"

    names = [f"batch/clip{i}" for i in range(JOBS)]
    assert Counter(n["job"] for n in notes.read()) == Counter(names)  # one message each
    assert all(n["state"] == "done" for n in notes.read())
    for name in names:
        st = status(storage, f"batch/.dropreel/{name.rpartition('/')[2]}/status.json")
        assert (st["state"], st["attempt"]) == ("done", 1), name
    assert sorted(started(rt)) == sorted(names)  # each rendered once, by its first claim


@pytest.mark.parametrize("backend", ["s3_storage", "local_storage"])
def test_a_run_whose_lease_was_taken_back_while_queued_writes_nothing(
    request, backend, make_settings, tmp_path
):
    storage = request.getfixturevalue(backend)
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("q/ann.png", png(64, 64))
    storage.put("q/ann.wav", wav(0.6))
    settings = make_settings(storage, engine_talking_head=SPEC.name)
    rt = runtime(storage, settings, notes)

    def the_job():
        listing = storage.list()
        (job,) = discover(listing.objects, listing.server_time, 0.0, settings.lease_seconds)
        return job

    stale = claim(storage, the_job())
    assert take_back(storage, the_job(), attempt=2)  # another watcher took it back meanwhile

    outcomes = Outcomes()
    dispatcher = PoolDispatcher(rt, workers=1, on_result=outcomes)
    dispatcher.dispatch(the_job(), stale)
    dispatcher.wait()
    dispatcher.close()

    assert outcomes == {"q/ann": RunOutcome.LOST}
    with pytest.raises(ObjectNotFound):
        storage.get("q/.dropreel/ann/status.json")  # not even "running"
    assert started(rt) == [] and notes.read() == []
    assert [o.key for o in storage.list().objects if o.key.endswith(".mp4")] == []
