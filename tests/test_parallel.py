"""Long talking heads split at pauses, rendered as segments on several workers, joined as one
MP4 (handlers/segments.py), through the real lifecycle with the preview engine, which stamps
each frame with its segment's number. What is checked is what a user sees: the cuts, the
joined video's frames and length, the bucket's keys, status.json, the notifications."""

from __future__ import annotations

import io
import itertools
import json
import threading
from collections import Counter
from concurrent.futures import Future

import numpy as np
import pytest
import soundfile as sf

from gpu.encode import encode_mp4
from gpu.pauses import SHORTEST_PAUSE_SECONDS, plan_cuts
from gpu.preview import TALKING_FPS as FPS
from gpu.preview import PreviewEngine, read_segment_stamp
from gpu.segment_join import decode_frames, join_segments
from handlers import lifecycle
from handlers.claims import take_back
from handlers.lifecycle import RunOutcome
from handlers.notify import JobEvent
from handlers.reconcile import find_jobs, reconcile
from handlers.segment_ticket import run_segment_ticket
from handlers.segments import render_segment, spans_of
from handlers.status import JobState, JobStatus
from infra.cli.samples import flat_png, talk_with_pauses
from infra.local_dispatch import InlineDispatcher
from infra.local_segments import LocalSegments
from infra.modal.segments import ModalSegments
from infra.notify.slack import build_message
from tests.helpers import Notifications, Outcomes, decode_mp4, run_tick, runtime, status

RATE = 16_000


def talk(seconds: float = 60.0, seed: int = 0) -> tuple[bytes, list[tuple[float, float]]]:
    return talk_with_pauses(seconds, RATE, seed)


def _portrait() -> bytes:
    return flat_png(128, 128)


class Counting(PreviewEngine):
    """The preview engine, counting renders started per segment; `stored` counts the
    segments' results stored in the bucket (renders that finished), by first frame."""

    def __init__(self) -> None:
        self.started: Counter = Counter()
        self.stored: Counter = Counter()
        self._lock = threading.Lock()

    def finished(self, storage) -> Counter:
        """Results stored per segment number (the job's cuts, from its status.json)."""
        st = status(storage, "s/.dropreel/al/status.json")
        number = {span.start: i for i, span in enumerate(spans_of(st["settings"]))}
        return Counter({number[start]: n for start, n in self.stored.items()})

    def render(self, plan, progress=None):
        with self._lock:
            self.started[plan.request.segment] += 1
        yield from super().render(plan, progress)

    def watch(self, storage) -> None:
        put_if_absent = storage.put_if_absent

        def counted(key, data, content_type=None):
            etag = put_if_absent(key, data, content_type)
            if ".seg-" in key:
                with self._lock:
                    self.stored[int(key.rpartition(".seg-")[2][:6])] += 1
            return etag

        storage.put_if_absent = counted


def _setup(storage, make_settings, tmp_path, workers=4, **overrides):
    notes = Notifications(tmp_path / "notes.jsonl")
    settings = make_settings(
        storage, parallel_segment_seconds=10.0, parallel_gpus_per_job=workers, **overrides
    )
    rt = runtime(storage, settings, notes)
    engine = Counting()
    engine.watch(storage)
    rt.engine_loader = lambda name: engine
    rt.segments = LocalSegments(workers)
    return rt, engine, notes


def _keys(storage) -> set[str]:
    return {o.key for o in storage.list().objects}


def test_cuts_fall_inside_pauses_and_segments_are_bounded():
    data, pauses = talk(60.0)
    samples, _ = sf.read(io.BytesIO(data), dtype="float32")
    spans, found = plan_cuts(samples, RATE, FPS, 10.0)
    assert len(spans) >= 6
    assert spans[0].start == 0 and spans[-1].end == int(np.ceil(len(samples) / (RATE / FPS)))
    assert all(a.end == b.start for a, b in itertools.pairwise(spans))
    assert all(span.frames <= 10 * FPS for span in spans)
    for span in spans[1:]:
        cut = span.start / FPS
        assert any(start <= cut <= end for start, end in pauses), f"cut at {cut:.2f}s"
    # every real pause is found, and nothing shorter than a pause is taken for one
    assert len(found) == len(pauses)
    assert all(p.frames >= SHORTEST_PAUSE_SECONDS * FPS for p in found)
    # for eight GPUs: eight segments, the longest (which sets the wall time) near an eighth
    spans, _ = plan_cuts(samples, RATE, FPS, 30.0, pieces=8)
    total = spans[-1].end
    assert len(spans) == 8 and max(span.frames for span in spans) <= total / 8 * 1.4
    for span in spans[1:]:
        assert any(start <= span.start / FPS <= end for start, end in pauses)


def test_a_long_talking_head_renders_in_segments_joined_as_one_video(
    storage, make_settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(lifecycle, "STATUS_EVERY_SECONDS", 0.0)  # status.json at each step
    rt, engine, notes = _setup(storage, make_settings, tmp_path)
    data, pauses = talk(60.0)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    seen = []  # status.json's progress while the segments render

    def on_frame(job, done: int, total: int) -> None:
        progress = status(storage, "s/.dropreel/al/status.json")["progress"]
        if not seen or progress != seen[-1]:
            seen.append(progress)

    rt.on_frame = on_frame
    run_tick(rt)

    [note] = notes.read()
    assert note["state"] == "done"
    st = status(storage, "s/.dropreel/al/status.json")
    parallel = st["settings"]["parallel"]
    count = parallel["segments"]
    assert count >= 6 and engine.finished(storage) == Counter(range(count))
    for cut in parallel["cuts_seconds"]:
        assert any(start - 0.04 <= cut <= end + 0.04 for start, end in pauses)

    (tmp_path / "out.mp4").write_bytes(storage.get("s/al.mp4"))
    frames = [read_segment_stamp(f) for f in decode_frames(tmp_path / "out.mp4")]
    audio_seconds = len(sf.read(io.BytesIO(data))[0]) / RATE
    assert abs(len(frames) / FPS - audio_seconds) <= 1 / FPS
    heard = decode_mp4(storage.get("s/al.mp4"), tmp_path).audio_seconds  # muxed once, whole
    assert heard == pytest.approx(len(frames) / FPS, abs=0.05)
    cuts = [0, *(round(c * FPS) for c in parallel["cuts_seconds"]), len(frames)]
    for index, (start, end) in enumerate(itertools.pairwise(cuts)):
        assert frames[start:end] == [index] * (end - start), f"segment {index}"
    assert st["video"]["frames"] == len(frames)
    assert st["progress"] is None and st["gpu_seconds"] is None  # not metered: no GPU named
    # progress across segments: frames and segments done, never going back
    assert seen[0] == {"done": 0, "total": len(frames), "segments_done": 0, "segments": count}
    assert seen[-1]["segments_done"] == count and seen[-1]["done"] == len(frames)
    assert all(a["done"] <= b["done"] for a, b in itertools.pairwise(seen))
    # the segments' results are gone once the video is published
    assert not [k for k in _keys(storage) if ".seg-" in k]


def test_continuous_mode_when_prompt_says_parallel_false(storage, make_settings, tmp_path):
    rt, engine, notes = _setup(storage, make_settings, tmp_path)
    data, _ = talk(24.0, seed=1)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    storage.put("s/al.prompt.json", b'{"parallel": false}')
    run_tick(rt)
    [note] = notes.read()
    assert note["state"] == "done"
    assert engine.started == Counter({None: 1})
    assert "parallel" not in status(storage, "s/.dropreel/al/status.json")["settings"]


class DyingWorkers:
    """A fake multi-worker dispatcher: each segment on its own worker (a thread); the worker
    of segment `victim` dies (its call ends with an error, as a killed Modal container's does)
    halfway through its first `times` tries."""

    class WorkerDied(Exception):
        """The worker's process was killed."""

    def __init__(self, victim: int, times: int = 1) -> None:
        self.victim, self.times = victim, times
        self.killed = 0

    def submit(self, rt, task, progress) -> Future:
        future: Future = Future()
        dies = task.index == self.victim and self.killed < self.times
        if dies:
            self.killed += 1

        def report(done: int, total: int) -> None:
            if dies and done == task.span.frames // 2:
                raise self.WorkerDied(f"worker of segment {task.index} was killed")
            progress(done, total)

        def work() -> None:
            try:
                future.set_result(render_segment(rt, task, report))
            except Exception as err:
                future.set_exception(err)

        threading.Thread(target=work, daemon=True).start()
        return future


def test_a_worker_killed_during_one_segment_renders_only_that_segment_again(
    storage, make_settings, tmp_path
):
    rt, engine, notes = _setup(storage, make_settings, tmp_path, workers=8)
    rt.segments = DyingWorkers(victim=2)
    data, _ = talk(60.0, seed=2)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    run_tick(rt)

    [note] = notes.read()
    assert note["state"] == "done"
    count = status(storage, "s/.dropreel/al/status.json")["settings"]["parallel"]["segments"]
    assert engine.finished(storage) == Counter(range(count))  # one finished render per segment
    assert engine.started == Counter({**dict.fromkeys(range(count), 1), 2: 2})
    (tmp_path / "out.mp4").write_bytes(storage.get("s/al.mp4"))
    stamps = {read_segment_stamp(f) for f in decode_frames(tmp_path / "out.mp4")}
    assert stamps == set(range(count))


def test_a_stored_segment_is_never_rendered_again(storage, make_settings, tmp_path):
    """A segment that fails on both tries fails the job's attempt; the next attempt (the job
    taken back) renders only that segment: the stored ones never again."""
    rt, engine, notes = _setup(storage, make_settings, tmp_path, workers=8)
    rt.segments = DyingWorkers(victim=1, times=2)
    data, _ = talk(40.0, seed=3)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    held = Held()
    reconcile(rt, storage.list(), held)
    [(job, lease)] = held
    assert lifecycle.run_job(rt, job, lease) is RunOutcome.RETRY
    st = status(storage, "s/.dropreel/al/status.json")
    assert st["state"] == "queued" and "segment 2 of" in st["error"]
    count = sum(1 for k in _keys(storage) if ".seg-" in k) + 1
    assert engine.finished(storage) == Counter(i for i in range(count) if i != 1)

    [job] = find_jobs(rt, storage.list().objects, storage.list().server_time)
    lease = take_back(storage, job, 2)  # as a tick does once the lease expires
    assert lifecycle.run_job(rt, job, lease) is RunOutcome.DONE
    assert engine.finished(storage) == Counter(range(count))  # segment 1 once more, the rest never
    assert engine.started[1] == 3
    [note] = notes.read()
    assert note["state"] == "done"
    assert status(storage, "s/.dropreel/al/status.json")["attempt"] == 2


class Held(list):
    """A dispatcher that keeps what it was handed, to run later."""

    def dispatch(self, job, lease) -> None:
        self.append((job, lease))


def test_a_replaced_input_cancels_the_outstanding_segments(
    storage, make_settings, tmp_path, monkeypatch
):
    monkeypatch.setattr(lifecycle, "STATUS_EVERY_SECONDS", 0.0)  # confirm the lease each step
    rt, engine, notes = _setup(storage, make_settings, tmp_path, workers=2)
    other = runtime(storage, rt.settings, notes)
    data, _ = talk(60.0, seed=4)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    held = Held()
    replaced = threading.Event()

    def on_frame(job, done: int, total: int) -> None:
        if done and not replaced.is_set():
            replaced.set()
            storage.put("s/al.wav", talk(12.0, seed=5)[0])
            reconcile(other, storage.list(), held)  # ends the stale lease, claims the new

    rt.on_frame = on_frame
    outcomes = Outcomes()
    reconcile(rt, storage.list(), InlineDispatcher(rt, on_result=outcomes))
    assert outcomes == {"s/al": RunOutcome.LOST}
    assert len(held) == 1  # the new version, claimed by the other runtime
    assert sum(engine.started.values()) <= 2 < 6  # the outstanding segments never started
    assert notes.read() == [] and "s/al.mp4" not in _keys(storage)
    rt.segments.close()  # the running ones stop at their next frame and store nothing
    assert not [k for k in _keys(storage) if ".seg-" in k]


@pytest.fixture(params=["local"])
def storage(request, tmp_path):
    """The parallel path only touches storage through the port both backends pass; the local
    folder keeps these long renders quick (test_lost_replies covers S3's conditional writes)."""
    from infra.storage.local import LocalStorage

    return LocalStorage(tmp_path / "inbox")


class FakeCall:
    """A spawned Modal call: runs in a thread; `get(timeout=0)` raises TimeoutError until it
    finished, then returns its value or raises its failure, as modal.FunctionCall does."""

    def __init__(self, fn) -> None:
        self.value, self.error, self.cancelled = None, None, False
        self.finished = threading.Event()

        def work() -> None:
            try:
                self.value = fn()
            except Exception as err:
                self.error = err
            self.finished.set()

        threading.Thread(target=work, daemon=True).start()

    def get(self, timeout: float = 0):
        if not self.finished.wait(timeout):
            raise TimeoutError
        if self.error is not None:
            raise self.error
        return self.value

    def cancel(self) -> None:
        self.cancelled = True


def test_on_modal_each_segment_is_its_own_call(storage, make_settings, tmp_path):
    """The coordinator spawns one call per segment; each call's container finds the job,
    downloads its inputs and renders its segment with the job's prompt and seed."""
    rt, engine, notes = _setup(storage, make_settings, tmp_path)
    container = runtime(storage, rt.settings, notes)  # another container of the class
    container.engine_loader = rt.engine_loader
    tickets = []

    def spawn(ticket):
        tickets.append(json.loads(json.dumps(ticket)))  # plain data only
        return FakeCall(lambda: run_segment_ticket(container, ticket))

    rt.segments = ModalSegments(spawn, limit=8)
    data, _ = talk(30.0, seed=6)
    storage.put("s/al.png", _portrait())
    storage.put("s/al.wav", data)
    storage.put("s/al.prompt.json", b'{"seed": 7}')
    run_tick(rt)

    [note] = notes.read()
    assert note["state"] == "done"
    count = status(storage, "s/.dropreel/al/status.json")["settings"]["parallel"]["segments"]
    assert sorted(t["index"] for t in tickets) == list(range(count)) and count >= 3
    assert {t["seed"] for t in tickets} == {7}
    assert all(json.loads(t["job"]["prompt"]) == {"seed": 7} for t in tickets)
    assert engine.finished(storage) == Counter(range(count))


def test_slack_shows_progress_across_segments():
    running = JobStatus(
        state=JobState.RUNNING,
        job="s/al",
        version="v1",
        progress={"done": 750, "total": 1500, "segments_done": 3, "segments": 8},
    )
    text, blocks = build_message(JobEvent(running, "s/", step="progress"), 3600)
    shown = json.dumps(blocks)
    assert "50 %" in text and "frame 750 of 1,500, 3 of 8 segments done" in shown


@pytest.mark.parametrize("crossfade", [0, 3])
def test_a_join_keeps_every_frame_and_a_cross_fade_dissolves_in(tmp_path, crossfade):
    paths = []
    for index, grey in enumerate((0, 200)):
        paths.append(tmp_path / f"{index}.mp4")
        frames = (np.full((32, 32, 3), grey, np.uint8) for _ in range(5))
        encode_mp4(frames, FPS, paths[-1])
    data, _ = talk(0.4)
    (tmp_path / "talk.wav").write_bytes(data)
    result = join_segments(paths, FPS, tmp_path / "joined.mp4", tmp_path / "talk.wav", crossfade)
    greys = [round(f.mean()) for f in decode_frames(tmp_path / "joined.mp4")]
    assert result.frames == len(greys) == 10 and result.has_audio
    dissolve = [round(200 * (i + 1) / (crossfade + 1)) for i in range(crossfade)]
    assert greys == pytest.approx([0] * 5 + dissolve + [200] * (5 - crossfade), abs=4)
