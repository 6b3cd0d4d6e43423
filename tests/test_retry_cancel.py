"""Retry and cancel from the bucket (`<stem>.retry`, `<stem>.cancel`), and renders whose inputs
were replaced or deleted mid-render: on S3 (moto) and a local folder, through the real
lifecycle. What is checked is what a user sees: files in the bucket, status.json, `dropreel
status`, the notifications."""

from __future__ import annotations

import time

import pytest

from gpu.errors import EngineSetupError
from gpu.registry import load_engine
from handlers import lifecycle
from handlers.claims import Lease, claim
from handlers.jobs import Job, discover
from handlers.lifecycle import RunOutcome, run_job
from handlers.reconcile import reconcile
from handlers.status import JobState, JobStatus
from infra.cli.main import main
from infra.local_dispatch import InlineDispatcher
from tests.helpers import (
    Notifications,
    Outcomes,
    open_leases,
    png,
    run_tick,
    runtime,
    started,
    status,
    wav,
)
from triggers.events.model import ObjectEvent
from triggers.intake import Intake


class Held(list):
    """A dispatcher that keeps what it was handed, to run later."""

    def dispatch(self, job: Job, lease: Lease) -> None:
        self.append((job, lease))


def _broken_setup(name: str):
    raise EngineSetupError(name, "torch", "pip install 'dropreel[gpu]'")


def _keys(storage) -> set[str]:
    return {o.key for o in storage.list().objects}


@pytest.fixture
def status_cli(capsys, monkeypatch, moto_endpoint):
    """`dropreel status URL` as a user runs it: what it prints."""
    monkeypatch.setenv("DROPREEL_ENDPOINT_URL", moto_endpoint)
    return lambda storage: _status_cli(storage, capsys)


def _status_cli(storage, capsys) -> str:
    capsys.readouterr()
    assert main(["status", storage.url]) == 0
    return capsys.readouterr().out


def test_a_failed_job_is_retried_once_by_a_retry_file(storage, make_settings, tmp_path, status_cli):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    broken = runtime(storage, settings, notes)
    broken.engine_loader = _broken_setup
    run_tick(broken)
    assert status(storage, "s/.dropreel/al/status.json")["state"] == "failed"

    storage.put("s/al.retry", b"")  # the operator fixed the setup; the user asks again
    listing = storage.list()
    first, second = runtime(storage, settings, notes), runtime(storage, settings, notes)
    reconcile(first, listing, InlineDispatcher(first))
    reconcile(second, listing, InlineDispatcher(second))  # same listing: the file is used up
    run_tick(second)
    assert started(first) == ["s/al"] and started(second) == []
    assert [n["state"] for n in notes.read()] == ["failed", "done"]
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "done" and st["attempt"] == 1
    assert "s/al.mp4" in _keys(storage) and "s/al.retry" not in _keys(storage)
    assert "done" in status_cli(storage).splitlines()[1]


def test_a_retry_file_beside_a_done_job_renders_it_again(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    run_tick(rt)
    storage.put("s/al.RETRY", b"please")
    run_tick(rt)
    run_tick(rt)
    assert started(rt) == ["s/al", "s/al"]
    assert [n["state"] for n in notes.read()] == ["done", "done"]


def test_a_queued_job_is_cancelled_and_a_retry_renders_it(
    storage, make_settings, tmp_path, status_cli
):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    storage.put("s/al.cancel", b"")
    run_tick(rt)
    run_tick(rt)
    assert started(rt) == [] and notes.read() == []
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "cancelled" and "al.retry" in st["error"]
    assert "s/al.mp4" not in _keys(storage) and "s/al.cancel" not in _keys(storage)
    assert "cancelled" in status_cli(storage)

    storage.put("s/al.retry", b"")
    run_tick(rt)
    assert started(rt) == ["s/al"]
    assert [n["state"] for n in notes.read()] == ["done"]
    assert status(storage, "s/.dropreel/al/status.json")["state"] == "done"


@pytest.fixture
def every_step(monkeypatch):
    """Write status (and confirm the lease) at every progress step, so tests see the stop at
    the very next step instead of waiting seconds."""
    monkeypatch.setattr(lifecycle, "STATUS_EVERY_SECONDS", 0.0)


def _during_render(rt, at_frame: int, action) -> None:
    """Run `action()` once, from inside the render, when frame `at_frame` is done."""

    def on_frame(job: Job, done: int, total: int) -> None:
        if done == at_frame:
            action()

    rt.on_frame = on_frame


def test_a_running_render_stops_when_cancelled(storage, make_settings, tmp_path, every_step):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage)
    worker, other = runtime(storage, settings, notes), runtime(storage, settings, notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav(1.0))
    held = Held()

    def cancel() -> None:
        storage.put("s/al.cancel", b"")
        run_tick_with(other, held)

    _during_render(worker, 2, cancel)
    outcomes = Outcomes()
    reconcile(worker, storage.list(), InlineDispatcher(worker, on_result=outcomes))
    run_tick(other)
    assert outcomes == {"s/al": RunOutcome.LOST} and held == []
    assert notes.read() == []
    assert "s/al.mp4" not in _keys(storage)
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "cancelled" and st["video"] is None
    assert open_leases(_keys(storage)) == []


def run_tick_with(rt, dispatcher):
    return reconcile(rt, rt.storage.list(), dispatcher)


def test_a_replaced_input_stops_the_stale_render(storage, make_settings, tmp_path, every_step):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage)
    worker, other = runtime(storage, settings, notes), runtime(storage, settings, notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav(0.6))
    held = Held()

    def replace_audio() -> None:
        storage.put("s/al.wav", wav(1.2, seed=3))
        run_tick_with(other, held)  # sees the new version: stops the old, claims the new

    _during_render(worker, 2, replace_audio)
    outcomes = Outcomes()
    reconcile(worker, storage.list(), InlineDispatcher(worker, on_result=outcomes))
    assert outcomes == {"s/al": RunOutcome.LOST}
    assert notes.read() == [] and "s/al.mp4" not in _keys(storage)

    [(job, lease)] = held
    assert run_job(other, job, lease) is RunOutcome.DONE
    [note] = notes.read()
    assert note["state"] == "done" and note["version"] == job.version
    assert note["duration_seconds"] == pytest.approx(1.2, abs=0.1)


def test_deleting_the_inputs_mid_render_publishes_nothing(
    storage, make_settings, tmp_path, every_step
):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(storage)
    worker, other = runtime(storage, settings, notes), runtime(storage, settings, notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav(1.0))

    def delete_inputs() -> None:
        storage.delete("s/al.png")
        storage.delete("s/al.wav")
        run_tick(other)

    _during_render(worker, 2, delete_inputs)
    run_tick(worker)
    run_tick(other)
    assert notes.read() == []
    assert not [k for k in _keys(storage) if k.endswith((".mp4", ".lease", ".done"))]
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "cancelled" and "deleted" in st["error"]


def test_control_files_are_never_inputs(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    rt.engine_loader = load_engine
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    storage.put("s/other.retry", b"")  # beside no job: left alone
    run_tick(rt)
    [note] = notes.read()
    assert sorted(note["inputs"]) == sorted(storage.describe(k) for k in ("s/al.png", "s/al.wav"))
    assert "s/other.retry" in _keys(storage)


def test_a_retry_file_event_reaches_the_webhook_intake(s3_storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(s3_storage, make_settings(s3_storage), notes)
    rt.engine_loader = _broken_setup
    s3_storage.put("s/al.png", png())
    s3_storage.put("s/al.wav", wav())
    run_tick(rt)
    rt.engine_loader = load_engine
    s3_storage.put("s/al.retry", b"")
    intake = Intake(rt, InlineDispatcher(rt))
    try:
        report = intake.accept([ObjectEvent(s3_storage.bucket, "inbox/s/al.retry", True)])
    finally:
        intake.close()
    assert report.claimed == 1
    assert [n["state"] for n in notes.read()] == ["failed", "done"]


def test_a_dead_workers_undelivered_message_of_a_replaced_version_is_dropped(
    storage, make_settings, tmp_path
):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage, lease_seconds=0.5), notes)
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    [job] = discover(storage.list().objects, storage.list().server_time, 0, 30)
    lease = claim(storage, job)
    lease.finish(JobStatus.fresh(job, JobState.DONE, 1, 3))  # decided; then its worker died
    storage.put("s/al.wav", wav(0.8, seed=5))  # replaced before anyone sent the message
    time.sleep(0.6)
    run_tick(rt)
    assert [(n["state"], n["version"]) for n in notes.read()] == [("done", started_version(rt))]
    assert [k for k in _keys(storage) if k.endswith(".lease")] == [
        f"s/.dropreel/al/{started_version(rt)}.lease"  # the new version's, kept (claims.py)
    ]
    assert open_leases(_keys(storage)) == []


def started_version(rt) -> str:
    [job] = [j for j in discover(rt.storage.list().objects, rt.storage.list().server_time, 0, 30)]
    return job.version
