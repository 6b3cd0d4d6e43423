"""A claim made on a listing from before another worker finished the version renders nothing.

A decided version keeps its lease for a while (handlers/claims.py, "kept lease"), so a claim
soon after its listing loses at the conditional create and reads nothing more; once the lease
is gone, a claim from an old listing (or one with no listing time) reads the markers and finds
the finish."""

from __future__ import annotations

import time

from handlers import claims
from handlers.claims import claim
from handlers.jobs import discover
from handlers.reconcile import reconcile
from infra.local_dispatch import InlineDispatcher
from tests.helpers import Notifications, open_leases, png, run_tick, runtime, started, status, wav


class CountingStorage:
    """Counts the reads a claim makes."""

    def __init__(self, inner) -> None:
        self.inner, self.gets = inner, 0

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def get(self, key: str) -> bytes:
        self.gets += 1
        return self.inner.get(key)


def finished_behind(storage, make_settings, notes):
    """A listing made while the job was ready, then the job rendered by another watcher."""
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    stale = storage.list()  # the slow watcher's listing: the job is ready, nobody holds it
    run_tick(runtime(storage, make_settings(storage), notes))
    assert [n["state"] for n in notes.read()] == ["done"]
    return stale


def test_a_listing_older_than_the_finish_claims_nothing(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    stale = finished_behind(storage, make_settings, notes)

    late = runtime(storage, make_settings(storage), notes)
    report = reconcile(late, stale, InlineDispatcher(late))  # its listing is seconds old
    assert report.claimed == [] and started(late) == []
    [job] = discover(stale.objects, stale.server_time, 0, 30)
    counting = CountingStorage(storage)
    assert claim(counting, job, listed_at=time.monotonic()) is None
    assert counting.gets == 0  # refused by the kept lease, at the conditional create
    assert len(notes.read()) == 1
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "done" and st["notification"] == "sent"
    keys = [o.key for o in storage.list().objects]
    assert f"s/.dropreel/al/{job.version}.lease" in keys and open_leases(keys) == []


def test_once_the_kept_lease_is_gone_the_markers_refuse_an_old_listing(
    storage, make_settings, tmp_path, monkeypatch
):
    notes = Notifications(tmp_path / "notes.jsonl")
    stale = finished_behind(storage, make_settings, notes)
    monkeypatch.setattr(claims, "KEEP_DECIDED_LEASE_SECONDS", 0.0)
    monkeypatch.setattr(claims, "FRESH_LISTING_SECONDS", -1.0)  # below the keep, as it must be
    run_tick(runtime(storage, make_settings(storage), notes))  # the next look: the lease goes
    assert not [o.key for o in storage.list().objects if o.key.endswith(".lease")]

    late = runtime(storage, make_settings(storage), notes)
    assert reconcile(late, stale, InlineDispatcher(late)).claimed == []
    [job] = discover(stale.objects, stale.server_time, 0, 30)
    counting = CountingStorage(storage)
    assert claim(counting, job, listed_at=time.monotonic()) is None  # too old to skip the read
    assert counting.gets >= 1
    assert started(late) == [] and len(notes.read()) == 1
    assert not [o.key for o in storage.list().objects if o.key.endswith(".lease")]


def test_a_fresh_claim_reads_nothing(storage, make_settings, tmp_path):
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    listing = storage.list()
    [job] = discover(listing.objects, listing.server_time, 0, 30)
    counting = CountingStorage(storage)
    assert listing.started is not None and listing.started <= time.monotonic()
    assert claim(counting, job, listed_at=listing.started) is not None
    assert counting.gets == 0
    assert claim(CountingStorage(storage), job) is None  # the second claimer loses the create
