"""A worker killed with SIGKILL mid-render loses nothing: its lease expires and the job comes back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpu.registry import ENGINES
from handlers.errors import ObjectNotFound
from tests.helpers import Notifications, decode_mp4, png, run_tick, runtime, started, status, wav
from tests.slow_engine import SPEC

ROOT = Path(__file__).resolve().parents[1]
LEASE = 1.5


@pytest.fixture(autouse=True)
def slow_engine(monkeypatch):
    """The worker subprocess and this process both know the "slow-preview" engine."""
    monkeypatch.setitem(ENGINES, SPEC.name, SPEC)


def start_worker(storage, moto_endpoint: str, notes: Path, max_attempts: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DROPREEL_WATCH_ROOT": storage.url,
        "DROPREEL_ENDPOINT_URL": moto_endpoint,
        "DROPREEL_REGION": "us-east-1",
        "DROPREEL_SETTLE_SECONDS": "0",
        "DROPREEL_LEASE_SECONDS": str(LEASE),
        "DROPREEL_MAX_ATTEMPTS": str(max_attempts),
        "DROPREEL_ENGINE_TALKING_HEAD": "slow-preview",
        "DROPREEL_NOTIFIER": "none",
        "DROPREEL_NOTIFY_LOG": str(notes),
        "SLOW_ENGINE_FRAME_DELAY": "0.2",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "tests.slow_engine"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill_mid_render(storage, worker: subprocess.Popen, status_key: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            st = json.loads(storage.get(status_key))
            if st["state"] == "running" and (st.get("progress") or {}).get("done", 0) > 0:
                break
        except (ObjectNotFound, ValueError, KeyError):
            pass
        time.sleep(0.05)
    else:
        worker.kill()
        pytest.fail("the worker never started rendering")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()


def visible_mp4s(storage) -> list[str]:
    return [o.key for o in storage.list().objects if o.key.endswith(".mp4")]


@pytest.mark.parametrize("backend", ["s3_storage", "local_storage"])
def test_killed_worker_job_is_taken_back_and_completed(
    request, backend, moto_endpoint, make_settings, tmp_path
):
    storage = request.getfixturevalue(backend)
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("crash/bob.png", png(64, 64))
    storage.put("crash/bob.wav", wav(2.0))
    worker = start_worker(storage, moto_endpoint, notes.path, max_attempts=3)
    kill_mid_render(storage, worker, "crash/.dropreel/bob/status.json")
    assert visible_mp4s(storage) == []  # no partial MP4, ever

    settings = make_settings(storage, lease_seconds=LEASE, engine_talking_head="slow-preview")
    rt = runtime(storage, settings, notes)
    assert run_tick(rt).claimed == []  # the lease is still fresh: nobody steals it
    time.sleep(LEASE + 1.2)
    os.environ["SLOW_ENGINE_FRAME_DELAY"] = "0"
    try:
        report = run_tick(rt)
    finally:
        os.environ.pop("SLOW_ENGINE_FRAME_DELAY")
    assert report.taken_back == ["crash/bob"]
    st = status(storage, "crash/.dropreel/bob/status.json")
    assert st["state"] == "done" and st["attempt"] == 2
    assert decode_mp4(storage.get("crash/bob.mp4"), tmp_path).frames == 50
    assert [n["state"] for n in notes.read()] == ["done"]


def test_job_fails_once_after_max_attempts(s3_storage, moto_endpoint, make_settings, tmp_path):
    storage = s3_storage
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("crash/eve.png", png(64, 64))
    storage.put("crash/eve.wav", wav(2.0))
    worker = start_worker(storage, moto_endpoint, notes.path, max_attempts=1)
    kill_mid_render(storage, worker, "crash/.dropreel/eve/status.json")
    time.sleep(LEASE + 1.2)
    settings = make_settings(storage, lease_seconds=LEASE, max_attempts=1)
    rt = runtime(storage, settings, notes)
    report = run_tick(rt)
    run_tick(rt)
    assert report.failed == ["crash/eve"] and started(rt) == []
    st = status(storage, "crash/.dropreel/eve/status.json")
    assert st["state"] == "failed" and "stopped responding" in st["error"]
    assert [n["state"] for n in notes.read()] == ["failed"]
    assert visible_mp4s(storage) == []
