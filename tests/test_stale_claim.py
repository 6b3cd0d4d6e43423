"""A claim made on a listing from before another worker finished the version renders nothing:
the finished worker wrote its marker, then deleted its lease, so the late claim wins the lease
and must find the marker."""

from __future__ import annotations

from handlers.claims import claim
from handlers.jobs import discover
from handlers.reconcile import reconcile
from infra.local_dispatch import InlineDispatcher
from tests.helpers import Notifications, png, run_tick, runtime, started, status, wav


def test_a_listing_older_than_the_finish_claims_nothing(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    rt = runtime(storage, make_settings(storage), notes)
    stale = storage.list()  # the slow watcher's listing: the job is ready, nobody holds it
    run_tick(rt)  # another watcher renders it, writes the done marker, deletes the lease
    assert [n["state"] for n in notes.read()] == ["done"]

    late = runtime(storage, make_settings(storage), notes)
    report = reconcile(late, stale, InlineDispatcher(late))
    assert report.claimed == [] and started(late) == []
    assert claim(storage, discover(stale.objects, stale.server_time, 0, 30)[0]) is None
    assert len(notes.read()) == 1
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "done" and st["notification"] == "sent"
    assert not [o.key for o in storage.list().objects if o.key.endswith(".lease")]
