"""Exactly one render and one notification per job version, whatever races."""

from __future__ import annotations

import threading
from collections import Counter

from handlers.runtime import Runtime
from infra.local_dispatch import PoolDispatcher
from tests.helpers import Notifications, png, prompt, runtime, started, wav
from triggers.poller import tick

JOBS = 50


def drop_jobs(storage) -> None:
    for i in range(JOBS):
        folder = f"batch/{i % 5}/"
        if i % 3 == 0:
            storage.put(
                f"{folder}clip{i}.prompt.json",
                prompt(f"scene {i}", duration_seconds=0.25, fps=8, width=64, height=64),
            )
        else:
            storage.put(f"{folder}face{i}.png", png(64, 64, seed=i))
            storage.put(f"{folder}face{i}.wav", wav(0.5, seed=i))


def race(storage, settings, notes, rounds: int = 2) -> list[Runtime]:
    """Two pollers tick at the same moment, each tick repeated, each with a worker pool."""
    runtimes = [runtime(storage, settings, notes) for _ in range(2)]
    pools = [PoolDispatcher(rt, 3) for rt in runtimes]
    barrier = threading.Barrier(2)

    def poller(index: int) -> None:
        for _ in range(rounds):
            barrier.wait()
            tick(runtimes[index], pools[index])
            tick(runtimes[index], pools[index])  # the same tick, repeated at once
            pools[index].wait()

    threads = [threading.Thread(target=poller, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for pool in pools:
        pool.close()
    return runtimes


def renders(runtimes: list[Runtime]) -> Counter:
    return Counter(name for rt in runtimes for name in started(rt))


def test_two_pollers_render_each_job_exactly_once(storage, make_settings, tmp_path):
    notes = Notifications(tmp_path / "notes.jsonl")
    drop_jobs(storage)
    settings = make_settings(storage)
    runtimes = race(storage, settings, notes)

    counts = renders(runtimes)
    assert len(counts) == JOBS and set(counts.values()) == {1}
    sent = Counter(n["job"] for n in notes.read())
    assert len(sent) == JOBS and set(sent.values()) == {1}
    assert all(n["state"] == "done" for n in notes.read())
    mp4s = [o.key for o in storage.list().objects if o.key.endswith(".mp4")]
    assert len(mp4s) == JOBS

    # An unchanged job never renders twice; a replaced input renders again, once.
    storage.put("batch/1/face1.png", png(64, 64, seed=999))
    runtimes = race(storage, settings, notes)
    assert renders(runtimes) == Counter({"batch/1/face1": 1})
    assert Counter(n["job"] for n in notes.read())["batch/1/face1"] == 2
