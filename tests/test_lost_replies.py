"""Exactly once when replies are lost after the server applied a write, and when workers die at
each step: conditional writes recognise their own, done and failed exclude each other, and a
notification a dead worker left unsent is sent by the next tick (the outbox)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from contextlib import nullcontext
from datetime import timedelta

import pytest

from handlers import claims
from handlers.claims import claim
from handlers.errors import PreconditionFailed
from handlers.jobs import discover
from handlers.reconcile import reconcile
from handlers.runtime import Runtime
from infra.local_dispatch import InlineDispatcher, PoolDispatcher
from infra.storage.s3 import S3Storage, make_client
from tests.crashes import STEPS, Crash, CrashingStorage, crash_mid_render
from tests.fault_proxy import FaultProxy
from tests.helpers import Notifications, Renders, open_leases, png, run_tick, runtime, status, wav
from tests.index_chaos import IndexVandal
from triggers.events.model import ObjectEvent
from triggers.intake import Intake
from triggers.poller import tick

LEASE = 2.0


@pytest.fixture
def proxy(moto_endpoint):
    with FaultProxy(moto_endpoint) as proxy:
        yield proxy


def proxied(proxy: FaultProxy, bucket: str) -> S3Storage:
    return S3Storage(bucket, "inbox/", client=make_client(proxy.url, "us-east-1"))


def test_a_retried_conditional_write_that_meets_its_own_write_succeeds(proxy, bucket):
    storage = proxied(proxy, bucket)
    proxy.lose_next(1)  # applied by the server, reply lost: botocore's retry meets 412
    etag = storage.put_if_absent("a/.dropreel/x/v.lease", b'{"write": "mine-1"}')
    assert storage.get("a/.dropreel/x/v.lease") == b'{"write": "mine-1"}'
    proxy.lose_next(1)
    renewed = storage.put_if_match("a/.dropreel/x/v.lease", b'{"write": "mine-2"}', etag)
    assert renewed != etag
    assert storage.put_if_match("a/.dropreel/x/v.lease", b'{"write": "mine-3"}', renewed)
    assert proxy.lost["PUT"] == 2

    # someone else's object is still someone else's, retried or not
    with pytest.raises(PreconditionFailed):
        storage.put_if_absent("a/.dropreel/x/v.lease", b'{"write": "theirs"}')
    proxy.lose_next(1)
    with pytest.raises(PreconditionFailed):
        storage.put_if_match("a/.dropreel/x/v.lease", b'{"write": "late"}', etag)


def test_giving_up_on_a_stale_listing_never_fails_a_finished_job(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("g/ann.png", png())
    storage.put("g/ann.wav", wav())
    rt = runtime(storage, make_settings(storage, max_attempts=1), notes)
    # The listing a slow tick made while the worker's lease looked expired at its last attempt
    stale = storage.list()
    lease = claim(storage, discover(stale.objects, stale.server_time, 0, 30)[0])
    stale = storage.list()
    stale = type(stale)(stale.objects, stale.server_time + timedelta(seconds=60), stale.pages)
    InlineDispatcher(rt).dispatch(discover(stale.objects, stale.server_time, 0, 30)[0], lease)

    report = reconcile(rt, stale, InlineDispatcher(rt))  # acts only on the lease it listed
    assert report.failed == []
    keys = [o.key for o in storage.list().objects]
    assert not [k for k in keys if k.endswith(".failed")]
    assert [n["state"] for n in notes.read()] == ["done"]
    assert status(storage, "g/.dropreel/ann/status.json")["state"] == "done"


@pytest.mark.parametrize("step", sorted(STEPS))
def test_a_crash_after_the_outcome_is_decided_still_sends_one_message(
    storage, make_settings, tmp_path, step
):
    notes = Notifications(tmp_path / "notes.jsonl")
    storage.put("o/bo.png", png())
    storage.put("o/bo.wav", wav())
    crashing = CrashingStorage(storage, {"o/bo": step})
    settings = make_settings(storage, lease_seconds=LEASE)
    rt = runtime(crashing, settings, notes)
    with pytest.raises(Crash):
        run_tick(rt)
    assert notes.read() == []

    time.sleep(LEASE + 0.5)
    report = run_tick(runtime(storage, settings, notes))
    sent = notes.read()
    assert [n["state"] for n in sent] == ["done"] and sent[0]["video_key"] == "o/bo.mp4"
    if step == "after upload":  # nothing was decided yet: the job is taken back and renders
        assert report.taken_back == ["o/bo"]
    else:
        assert report.resent == ["o/bo"]
    st = status(storage, "o/.dropreel/bo/status.json")
    assert st["state"] == "done" and st["notification"] == "sent"
    keys = {o.key.rpartition(".")[2] for o in storage.list().objects if "/.dropreel/" in o.key}
    assert keys == {"done", "lease", "json", "jpg"}  # the marker records the message as sent
    assert open_leases(o.key for o in storage.list().objects) == []  # no outbox entry left
    assert run_tick(runtime(storage, settings, notes)).resent == []
    assert len(notes.read()) == 1


# ------------------------------------------------------------------------------ the fault run

JOBS = 36
WATCHERS = 3
LOSE_EVERY = 20  # 5% of the replies of each kind
CRASH_STEPS = ["mid-render", *sorted(STEPS)]


class Decisions(Counter):
    """Counts each job's outcome decisions: a run that completed and turned its lease final."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._finish = claims.Lease.finish
        me = self

        def finish(lease, status):
            try:
                me._finish(lease, status)
            except Crash:  # the write landed, then the worker died: it decided all the same
                me.count(status)
                raise
            me.count(status)

        self.patched = finish

    def count(self, status) -> None:
        with self._lock:
            self[f"{status.job} {status.state}"] += 1


def drop(storage, count: int) -> list[str]:
    names = []
    for i in range(count):
        folder = f"run/{i % 4}/"
        storage.put(f"{folder}j{i}.png", png(64, 64, seed=i))
        storage.put(f"{folder}j{i}.wav", wav(0.5, seed=i))
        names.append(f"{folder}j{i}")
    return names


def settled(storage, names: list[str]) -> bool:
    """Every job has a done or failed marker (its notification is recorded) and no open lease."""
    keys = [o.key for o in storage.list().objects]
    markers = Counter(k.rpartition(".")[2] for k in keys if "/.dropreel/" in k)
    return not open_leases(keys) and markers["done"] + markers["failed"] == len(names)


@pytest.mark.parametrize("index", ["every tick sweeps", "index under vandals"])
def test_lost_replies_and_crashes_every_version_once(
    proxy, bucket, moto_endpoint, make_settings, tmp_path, monkeypatch, index
):
    """36 jobs, 3 watchers with 2 render threads each, the webhook fed every event twice; 5%
    of the replies of every kind lost after moto applied them; 32 of the 36 jobs crash once,
    eight at each of four steps (mid-render, after upload, after the lease turned final, between
    the outcome's status and the notification). Either every tick sweeps, or ticks follow the
    active index (a sweep every 1.5 s) while a vandal deletes it or fills it with garbage."""
    truth = S3Storage(bucket, "inbox/", client=make_client(moto_endpoint, "us-east-1"))
    names = drop(truth, JOBS)
    plan = {name: CRASH_STEPS[i % 4] for i, name in enumerate(names) if i % 9 != 8}
    decisions = Decisions()
    monkeypatch.setattr(claims.Lease, "finish", decisions.patched)
    notes = Notifications(tmp_path / "notes.jsonl")
    crashed: dict[str, str] = {}
    lock = threading.Lock()
    sweep = 0.0 if index == "every tick sweeps" else 1.5
    settings = make_settings(truth, lease_seconds=LEASE, max_attempts=6, sweep_seconds=sweep)
    vandal = IndexVandal(truth, [f"run/{i}/" for i in range(4)]) if sweep else nullcontext()

    def watcher_runtime() -> Runtime:
        storage = CrashingStorage(proxied(proxy, bucket), plan)
        storage.crashed = crashed  # one record of crashes for every worker
        storage._lock = lock
        return Runtime(
            storage=storage,
            settings=settings,
            notifier=notes.notifier,
            on_start=Renders(),
            on_frame=crash_mid_render(plan, crashed, lock),
        )

    proxy.every = LOSE_EVERY
    stop = threading.Event()
    runtimes = [watcher_runtime() for _ in range(WATCHERS + 1)]
    pools = [PoolDispatcher(rt, 2) for rt in runtimes]
    errors: list[str] = []

    def watch(index: int) -> None:
        while not stop.is_set():
            try:
                tick(runtimes[index], pools[index])
            except Exception as err:  # a tick may fail on storage; the next one retries
                errors.append(repr(err))
            stop.wait(0.3)

    def webhook() -> None:
        intake = Intake(runtimes[-1], pools[-1])
        for _ in range(2):  # every event twice: duplicates are harmless
            for name in names:
                for ext in ("png", "wav"):
                    intake.accept([ObjectEvent(bucket, f"inbox/{name}.{ext}", True)])
        intake.close()

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(WATCHERS)]
    threads.append(threading.Thread(target=webhook))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    try:
        with vandal:
            while not settled(truth, names) and time.monotonic() - started < 80:
                time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for pool in pools:
            pool.close()
    proxy.every = 0
    assert not sweep or vandal.rounds >= 2, "the vandal never struck"

    assert settled(truth, names), f"unfinished after 80 s; tick errors: {errors[:3]}"
    listed = [o.key for o in truth.list().objects]
    finished = {k.rpartition("/.dropreel/")[0] for k in listed}
    sent = Counter(n["job"] for n in notes.read())
    renders = Counter(name for rt in runtimes for name in rt.on_start)
    figures = {
        "requests": sum(proxy.requests.values()),
        "lost replies": dict(proxy.lost),
        "jobs": JOBS,
        "crashes": Counter(crashed.values()),
        "renders started": sum(renders.values()),
        "renders completed": sum(decisions.values()),
        "notifications": sum(sent.values()),
        "seconds": round(time.monotonic() - started, 1),
    }
    print("fault run:", json.dumps(figures, default=dict))
    assert all(proxy.lost[m] for m in ("GET", "PUT", "DELETE")), figures  # every kind
    assert len(crashed) == len(plan), f"planned crashes that never happened: {figures}"
    for name in names:
        folder, _, stem = name.rpartition("/")
        meta = f"{folder}/.dropreel/{stem}/"
        ends = [k.rpartition(".")[2] for k in listed if k.startswith(meta)]
        outcome = [e for e in ends if e in ("done", "failed")]
        assert len(outcome) == 1, (name, ends)  # one done or failed marker
        assert decisions[f"{name} {outcome[0]}"] == 1, (name, decisions)  # one completed render
        assert sent[name] == 1, (name, sent[name])  # one notification
        st = status(truth, meta + "status.json")
        assert st["state"] == outcome[0] and st["notification"] == "sent", (name, st)
    assert sum(decisions.values()) == JOBS and sum(sent.values()) == JOBS
    assert finished and set(sent) == set(names)
