"""A job handed to Modal is kept while its call waits, retried once its call dies, and a
superseded call is cancelled: the lease take-back is the one retry mechanism.

The poller's real reconcile and the Modal dispatcher run against moto's S3 with short leases;
Modal itself is a fake call registry (`FakeModal`): `spawn` returns a call id and leaves the
call queued until the test starts it (the engine class's method, run here), kills it, or makes
Modal forget it. What is checked is what a user and the operator see: status.json's attempt,
the MP4, one notification, how many calls were spawned and which were cancelled.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from handlers.calls import CallState
from handlers.claims import Lease, claim, keep_for_holder, read_lease, take_back
from handlers.errors import LeaseLost, ObjectNotFound
from handlers.jobs import discover
from handlers.ticket import Ticket, run_ticket
from infra.modal.dispatch import ModalDispatcher
from tests.helpers import Notifications, png, runtime, status, wav
from triggers.poller import tick

LEASE = 1.0
TICK = 0.1
STATUS = "in/.dropreel/ann/status.json"


class FakeModal:
    """Spawned calls and what Modal would say about each."""

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.states: dict[str, CallState] = {}
        self.cancelled: list[str] = []
        self.spawned_at: dict[str, float] = {}

    def spawn(self, engine: str, ticket: dict[str, Any]) -> str:
        call_id = f"fc-{len(self.tickets) + 1}"
        self.tickets[call_id] = ticket
        self.states[call_id] = CallState.WAITING
        self.spawned_at[call_id] = time.monotonic()
        return call_id

    def state(self, call_id: str) -> CallState:
        return self.states.get(call_id, CallState.UNKNOWN)

    def cancel(self, call_id: str) -> None:
        self.cancelled.append(call_id)
        if self.states.get(call_id) is CallState.WAITING:
            self.states[call_id] = CallState.DEAD


@pytest.fixture
def modal(s3_storage, make_settings, tmp_path):
    """A poller with the Modal dispatcher and the fake registry, and a worker runtime."""
    storage = s3_storage
    storage.put("in/ann.png", png(64, 64))
    storage.put("in/ann.wav", wav(0.6))
    settings = make_settings(storage, lease_seconds=LEASE, heartbeat_seconds=0.2)
    notes = Notifications(tmp_path / "notes.jsonl")
    fake = FakeModal()
    poller = runtime(storage, settings, notes)
    poller.calls = fake
    dispatcher = ModalDispatcher(poller, fake.spawn, {"preview"})
    worker = runtime(storage, settings, notes)

    def poll_for(seconds: float, until=lambda: False) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not until():
            tick(poller, dispatcher)
            time.sleep(TICK)

    def start(call_id: str) -> str:
        """The call's container starts and runs the engine class's method."""
        ticket = Ticket.from_dict(fake.tickets[call_id])
        outcome = run_ticket(worker, ticket, call_id)
        fake.states[call_id] = CallState.FINISHED
        return outcome.value

    return fake, poll_for, start, storage, notes


def test_a_call_queued_for_five_leases_renders_once_as_attempt_1(modal):
    fake, poll_for, start, storage, notes = modal

    poll_for(5 * LEASE)  # the call sits in Modal's queue, its container starting
    assert list(fake.tickets) == ["fc-1"] and fake.cancelled == []

    assert start("fc-1") == "done"
    poll_for(2 * LEASE)  # nothing left to take back or resend
    st = status(storage, STATUS)
    assert (st["state"], st["attempt"]) == ("done", 1)
    assert [n["state"] for n in notes.read()] == ["done"]
    assert list(fake.tickets) == ["fc-1"]
    assert any(o.key == "in/ann.mp4" for o in storage.list("in/").objects)


def test_a_call_that_dies_is_retried_once_within_a_lease_of_its_death(modal):
    fake, poll_for, start, storage, notes = modal
    poll_for(2.5 * LEASE)  # queued past two leases: kept
    assert list(fake.tickets) == ["fc-1"]

    fake.states["fc-1"] = CallState.DEAD  # its container crashed (or was preempted for good)
    died = time.monotonic()
    poll_for(LEASE + 5 * TICK, until=lambda: "fc-2" in fake.tickets)
    assert "fc-2" in fake.tickets, "the dead call was not retried"
    assert fake.spawned_at["fc-2"] - died <= LEASE + 3 * TICK
    assert fake.tickets["fc-2"]["attempt"] == 2

    poll_for(3 * LEASE)  # the retry waits in the queue in its turn: kept, no third call
    assert list(fake.tickets) == ["fc-1", "fc-2"]
    assert start("fc-2") == "done"
    st = status(storage, STATUS)
    assert (st["state"], st["attempt"]) == ("done", 2)
    assert [n["state"] for n in notes.read()] == ["done"]


def test_a_superseded_call_is_cancelled_and_writes_nothing_if_it_runs(modal):
    fake, poll_for, start, storage, notes = modal
    poll_for(1.5 * LEASE)
    fake.states.pop("fc-1")  # Modal no longer knows the call (or could not be asked)

    poll_for(LEASE + 5 * TICK, until=lambda: "fc-2" in fake.tickets)
    assert fake.cancelled == ["fc-1"]  # cancelled once the take-back was won

    assert start("fc-1") == "lost"  # the cancel came too late: it writes nothing
    with pytest.raises(ObjectNotFound):
        status(storage, STATUS)
    assert start("fc-2") == "done"
    st = status(storage, STATUS)
    assert (st["state"], st["attempt"]) == ("done", 2)
    assert [n["state"] for n in notes.read()] == ["done"]


def test_a_lease_rewritten_for_its_call_stays_the_calls_until_taken_back(s3_storage):
    """The dispatcher's record and a poller's keep name the call: its worker carries on (a
    heartbeat that meets them adopts the lease); a take-back names no call: the worker stops."""
    storage = s3_storage
    storage.put("in/ann.png", png(64, 64))
    storage.put("in/ann.wav", wav(0.6))

    def listed():
        listing = storage.list()
        (job,) = discover(listing.objects, listing.server_time, 0.0, 0.0)
        return job

    claimed = claim(storage, listed())
    ticket_etag = claimed.etag
    assert claimed.record_call("fc-7")  # the dispatcher, right after spawning
    assert keep_for_holder(storage, listed(), read_lease(storage, listed()))  # a poller

    worker = Lease(storage, claimed.key, ticket_etag, 1, claimed.version, call="fc-7")
    worker.renew()  # its ticket's ETag is two writes old: adopted, not lost
    other = Lease(storage, claimed.key, ticket_etag, 1, claimed.version, call="fc-8")
    with pytest.raises(LeaseLost):
        other.renew()  # another call's ticket for the same claim
    assert take_back(storage, listed(), attempt=2)
    with pytest.raises(LeaseLost):
        worker.renew()


def test_modals_answers_map_to_call_states(monkeypatch):
    """`FunctionCall.get(timeout=0)` as Modal 1.6 answers it, for each kind of call."""
    import modal
    import modal.exception

    from infra.modal.calls import ModalCalls

    outcomes = {
        "fc-queued": TimeoutError(),  # Python's own: no output yet
        "fc-done": {"result": "done"},
        "fc-timeout": modal.exception.FunctionTimeoutError("past its timeout"),
        "fc-crash": RuntimeError("CUDA out of memory"),
        "fc-old": modal.exception.OutputExpiredError(),
        "fc-cancelled": modal.exception.InputCancellation(),
    }
    cancelled: list[str] = []

    class FakeCall:
        def __init__(self, call_id):
            self.call_id = call_id

        def get(self, timeout):
            assert timeout == 0
            outcome = outcomes[self.call_id]
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        def cancel(self, terminate_containers=False):
            cancelled.append(self.call_id)
            raise modal.exception.NotFoundError("gone")  # a cancel that fails is only logged

    monkeypatch.setattr(modal.FunctionCall, "from_id", staticmethod(FakeCall))
    calls = ModalCalls()
    assert {c: calls.state(c) for c in outcomes} == {
        "fc-queued": CallState.WAITING,
        "fc-done": CallState.FINISHED,
        "fc-timeout": CallState.DEAD,
        "fc-crash": CallState.DEAD,
        "fc-old": CallState.UNKNOWN,
        "fc-cancelled": CallState.DEAD,
    }
    calls.cancel("fc-old")
    assert cancelled == ["fc-old"]
