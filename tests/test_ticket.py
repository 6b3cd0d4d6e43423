"""A worker runs a ticket as the trigger routed it; the lease file is one typed record."""

from __future__ import annotations

import json

from handlers.claims import claim, read_attempt
from handlers.jobs import discover
from handlers.layout import Marker
from handlers.lifecycle import RunOutcome
from handlers.routing import route
from handlers.runtime import Runtime
from handlers.ticket import Ticket, make_ticket, run_ticket
from infra.storage.local import LocalStorage
from tests.helpers import Notifications, decode_mp4, prompt, status


class PromptUnreadable(LocalStorage):
    """A bucket whose prompt.json files cannot be read: only a worker that re-reads them fails."""

    def get(self, key: str) -> bytes:
        assert not key.endswith("prompt.json"), f"the worker read {key} again"
        return super().get(key)


def _only_job(storage):
    listing = storage.list()
    [job] = discover(listing.objects, listing.server_time, 0, 30)
    return job


def test_worker_renders_the_tickets_routing_without_reading_prompt_json(tmp_path, make_settings):
    trigger_side = LocalStorage(tmp_path / "inbox")
    trigger_side.put("boat/prompt.json", prompt("a boat", duration_seconds=1, fps=6))
    settings = make_settings(trigger_side)
    job = _only_job(trigger_side)
    lease = claim(trigger_side, job)
    ticket = make_ticket(trigger_side, job, lease, route(trigger_side, job, settings))
    sent = Ticket.from_dict(json.loads(json.dumps(ticket.to_dict())))  # plain data on the wire

    notes = Notifications(tmp_path / "notes.jsonl")
    worker = Runtime(PromptUnreadable(tmp_path / "inbox"), settings, notes.notifier)
    assert run_ticket(worker, sent) is RunOutcome.DONE

    st = status(trigger_side, "boat/.dropreel/prompt/status.json")
    assert st["state"] == "done" and st["engine"] == "preview"
    assert (st["settings"]["fps"], st["settings"]["frames"]) == (6, 6)
    assert decode_mp4(trigger_side.get("boat/prompt.mp4"), tmp_path).frames == 6
    assert [n["state"] for n in notes.read()] == ["done"]


def test_lease_attempt_is_read_back_and_a_garbled_lease_counts_as_the_first(local_storage):
    local_storage.put("f/a.png", b"x")
    local_storage.put("f/a.wav", b"x")
    job = _only_job(local_storage)
    claim(local_storage, job)
    assert read_attempt(local_storage, job) == 1
    local_storage.put(
        job.marker_key(Marker.LEASE), b'{"attempt": 3, "version": "v", "worker": "w"}'
    )
    assert read_attempt(local_storage, job) == 3
    local_storage.put(job.marker_key(Marker.LEASE), b"not a lease")
    assert read_attempt(local_storage, job) == 1
