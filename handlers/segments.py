"""A long talking head rendered as segments on many workers at once, then joined.

One GPU renders a five-minute talking head in many minutes; cut at pauses, its segments render
side by side. The job keeps its one claim: the run that holds the job's lease (the
coordinator) plans the cuts (gpu/pauses.py), hands each segment that has no result yet to a
`SegmentRunner` (locally a thread pool, infra/local_segments.py; on Modal one `.spawn` per
segment, infra/modal/segments.py), joins the results (gpu/segment_join.py) and publishes the
video as any run does. Segments keep the job's guarantees:

- **A finished segment is never rendered again.** Its result, an intermediate video, is stored
  under the job's metadata as `<version>.seg-<n>.mp4` with a conditional create (one per
  segment, whoever writes it); a later attempt of the job (a take-back after the coordinator
  died) lists them and renders only the missing ones.
- **A crashed segment is rendered again once.** A segment whose worker dies is handed out once
  more; a second failure fails this attempt of the job (transient errors: the job's lease
  expires and the next attempt renders only what is missing).
- **A stale segment writes nothing.** A segment worker reads the job's lease before storing its
  result: a job taken back, cancelled or decided since it was handed out stores nothing.
- **A replaced input cancels the outstanding segments.** The coordinator's heartbeat fails when
  the version goes stale (handlers/control.py); it cancels what is queued or running and
  deletes the version's segment results.
- Results are deleted once the job is done (`leftover_keys`, run by `complete`), progress
  counts frames and segments across workers, the per-job cap (`parallel_gpus_per_job`) bounds
  how many run at once, and the job's cost adds every segment's render time to its own.

Every segment is rendered from the same portrait with the same seed and settings (the job's
plan); motion restarts at each cut, which lies inside a pause. `"parallel": false` in
prompt.json keeps one continuous render.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor
from dataclasses import dataclass, replace
from itertools import islice, pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from config.kinds import JobKind
from gpu.encode import EncodeResult, encode_mp4
from gpu.engine import Progress, RenderRequest
from gpu.media import AudioInfo, probe_audio
from gpu.pauses import Span, plan_cuts
from gpu.registry import get_spec
from gpu.segment_join import INTERMEDIATE_CRF, encode_audio, join_segments
from gpu.speech.join import write_wav
from handlers import layout
from handlers.claims import LeaseKeeper, read_lease
from handlers.errors import (
    DropreelError,
    LeaseLost,
    PreconditionFailed,
    StorageError,
    first_line,
    is_permanent,
)
from handlers.jobs import Job
from handlers.runtime import Runtime
from handlers.status import JobStatus, StatusWriter

if TYPE_CHECKING:
    from handlers.lifecycle import Work
    from handlers.prompt import PromptFile
    from handlers.timeline import JobTimeline

log = logging.getLogger(__name__)

PAD_SECONDS = 0.2  # audio past a cut given to its segment, for engines that round lengths down
POLL_SECONDS = 0.05  # how often the coordinator looks at its segments
TRIES = 2  # a segment whose worker dies is handed out once more
SHORTEST_SECONDS = 5.0  # no job is cut finer than this for more GPUs (a clip is 3.24 s)


class SegmentFailed(DropreelError):
    """A segment failed on both of its tries; this attempt of the job stops (it is retried)."""


@dataclass(frozen=True)
class SegmentTask:
    """One segment to render: the job's request (seed fixed), its frames, where it goes."""

    job: Job
    engine: str
    request: RenderRequest
    index: int
    span: Span
    attempt: int  # the job's attempt that handed it out: a later one makes it stale
    fps: int  # the job's plan's frame rate: spans are in its frames
    prompt: PromptFile | None = None  # the job's checked prompt (a worker elsewhere reads it)

    @property
    def key(self) -> str:
        return segment_key(self.job, self.job.version, self.span)


@dataclass(frozen=True)
class SegmentResult:
    """A stored segment: how many frames, and the seconds its worker rendered for."""

    index: int
    frames: int
    seconds: float


class SegmentCall(Protocol):
    """A handed-out segment (a Future locally, a Modal FunctionCall's wrapper)."""

    def done(self) -> bool: ...

    def result(self) -> SegmentResult: ...

    def cancel(self) -> bool: ...


class SegmentRunner(Protocol):
    """Where segments render: `submit` returns at once; `progress(done, total)` may be called
    from the worker as frames are made (a runner that cannot report frames never calls it)."""

    def submit(self, rt: Runtime, task: SegmentTask, progress: Progress) -> SegmentCall: ...


def segment_key(job: Job, version: str, span: Span) -> str:
    """Named by its frames, so a result is only ever joined where it was cut for."""
    prefix = layout.meta_prefix(job.folder, job.meta_stem)
    return f"{prefix}{version}.seg-{span.start:06d}-{span.end:06d}.mp4"


def spans_of(settings: dict) -> list[Span]:
    """The segments a parallel render's settings (in status.json) name; [] for a continuous
    render."""
    parallel = settings.get("parallel")
    if not parallel:
        return []
    fps = settings["fps"]
    edges = [0, *(round(cut * fps) for cut in parallel["cuts_seconds"]), settings["frames"]]
    return [Span(a, b) for a, b in pairwise(edges)]


def wanted(rt: Runtime, job: Job, work: Work) -> bool:
    """True for a one-voice talking head on an engine that renders segments (its registry
    record says so: LongCat-Video-Avatar's point is one long, stable take; two voices would need
    both cut alike), longer than one segment, with a
    runner, not asked to stay continuous (`"parallel": false`). A runner on other machines (`shares_files` false) renders
    from the dropped recording, so a script job's speech renders in one piece there."""
    audio = work.request.audio
    runner = rt.segments
    return (
        runner is not None
        and (work.prompt is None or work.prompt.parallel is not False)
        and (getattr(runner, "shares_files", True) or work.speech is None)
        and job.kind is JobKind.TALKING_HEAD
        and get_spec(work.engine).segments
        and work.request.voices is None
        and audio is not None
        and audio.seconds > rt.settings.parallel_segment_seconds
    )


def leftover_keys(job: Job, status: JobStatus) -> list[str]:
    """The segment results a finished parallel render left (none for a continuous one)."""
    return [segment_key(job, status.version, span) for span in spans_of(status.settings)]


# -- the coordinator: the run that holds the job's lease -------------------------------------


def render_in_segments(
    rt: Runtime,
    job: Job,
    work: Work,
    writer: StatusWriter,
    keeper: LeaseKeeper,
    timeline: JobTimeline | None = None,
) -> EncodeResult:
    """Plan the job, render its segments on `rt.segments`, join them into `work.video`."""
    status = writer.status
    writer.stage("load", write=True)
    engine = rt.engine_loader(work.engine)
    writer.stage("check")
    plan = engine.check_inputs(work.request)  # the job's settings, seed and adjustments, once
    request = replace(work.request, seed=plan.seed)
    writer.stage("split")
    settings = rt.settings
    pieces = min(settings.parallel_gpus_per_job, int(request.audio.seconds // SHORTEST_SECONDS))
    samples = request.audio.samples(16_000)
    fps = int(plan.fps)  # talking heads run at whole frame rates (25; LongCat v1.0: 16)
    spans, pauses = plan_cuts(samples, 16_000, fps, settings.parallel_segment_seconds, pieces)
    total = spans[-1].end
    status.settings = {
        **plan.describe(),
        "frames": total,
        "parallel": {
            "segments": len(spans),
            "cuts_seconds": [round(span.start / fps, 2) for span in spans[1:]],
            "pauses": len(pauses),
            "gpus_per_job": rt.settings.parallel_gpus_per_job,
        },
    }
    status.adjustments = plan.adjustments
    attempt = keeper.lease.attempt
    tasks = [
        SegmentTask(job, work.engine, request, i, span, attempt, fps, work.prompt)
        for i, span in enumerate(spans)
    ]
    board = _Board(spans, _stored(rt, job, spans))
    status.progress = board.progress
    writer.stage("render", write=True)
    with (
        tempfile.TemporaryDirectory(prefix="dropreel-join-") as tmp,
        ThreadPoolExecutor(1, thread_name_prefix="audio-track") as side,
    ):
        seconds = total / fps  # the track is encoded while the segments render
        track = side.submit(encode_audio, work.audio, seconds, Path(tmp) / "track.m4a")
        try:
            _run(rt, tasks, board, writer, keeper, timeline)
        except LeaseLost:
            _forget_if_decided(rt, job, spans)
            raise
        finally:
            with _recording_lock:
                _recording.pop(work.request.audio.path, None)
        writer.extra_seconds = board.seconds
        writer.stage("join", write=True)
        paths = []
        for task in tasks:
            path = Path(tmp) / f"{task.index:03d}.mp4"
            rt.storage.download(task.key, path)
            paths.append(path)
        crossfade = round(rt.settings.parallel_crossfade_seconds * fps)
        return join_segments(paths, fps, work.video, work.audio, crossfade, track.result())


class _Board:
    """What the coordinator knows of its segments: stored, running, tries, frames made."""

    def __init__(self, spans: list[Span], stored: set[int]) -> None:
        self.spans = spans
        self.stored = stored
        self.frames = {i: spans[i].frames for i in stored}
        self.tries: dict[int, int] = {}
        self.seconds = 0.0
        self.cancelled = False

    @property
    def progress(self) -> dict[str, int]:
        return {
            "done": sum(self.frames.values()),
            "total": self.spans[-1].end,
            "segments_done": len(self.stored),
            "segments": len(self.spans),
        }


def _stored(rt: Runtime, job: Job, spans: list[Span]) -> set[int]:
    """The segments this version already has results for (an earlier attempt's)."""
    prefix = layout.meta_prefix(job.folder, job.meta_stem)
    keys = {obj.key for obj in rt.storage.list(prefix).objects}
    return {i for i, span in enumerate(spans) if segment_key(job, job.version, span) in keys}


def _run(
    rt: Runtime,
    tasks: list[SegmentTask],
    board: _Board,
    writer: StatusWriter,
    keeper: LeaseKeeper,
    timeline: JobTimeline | None,
) -> None:
    """Hand out every segment not stored yet, at most `parallel_gpus_per_job` at once, until
    all are stored; cancel what is out if the job's lease is lost or an error is permanent. A
    segment that failed on every try fails the attempt once the running segments are stored, so
    the next attempt renders only what is missing (GPU time already spent is kept)."""
    waiting = [task for task in tasks if task.index not in board.stored]
    out: dict[int, SegmentCall] = {}
    cap = rt.settings.parallel_gpus_per_job
    failed: SegmentFailed | None = None
    try:
        while waiting or out:
            keeper.check()  # a replaced input, a cancel or a take-back: stop here
            while waiting and len(out) < cap:
                task = waiting.pop(0)
                board.tries[task.index] = board.tries.get(task.index, 0) + 1
                out[task.index] = rt.segments.submit(rt, task, _frames_of(board, task.index))
            for index, call in list(out.items()):
                if call.done():
                    del out[index]
                    try:
                        _collect(board, tasks[index], call, waiting)
                    except SegmentFailed as err:
                        failed = failed or err
                        waiting.clear()  # nothing new; what runs finishes and is stored
            _report(rt, tasks[0].job, board, writer, keeper, timeline)
            time.sleep(POLL_SECONDS)
        if failed is not None:
            raise failed
    finally:
        board.cancelled = True  # a running segment stops at its next frame
        for call in out.values():
            call.cancel()


def _frames_of(board: _Board, index: int) -> Progress:
    def progress(done: int, total: int) -> None:
        if board.cancelled:
            raise LeaseLost(f"segment {index} stopped: its job's run ended")
        board.frames[index] = min(done, board.spans[index].frames)

    return progress


def _collect(board: _Board, task: SegmentTask, call: SegmentCall, waiting: list) -> None:
    """Record a finished call: stored, or handed out again once, or the attempt fails."""
    index = task.index
    try:
        result = call.result()
    except (Exception, CancelledError) as err:
        board.frames.pop(index, None)
        if is_permanent(err):  # the user's file, a missing package: no try helps
            raise
        if board.tries[index] >= TRIES:
            raise SegmentFailed(
                f"segment {index + 1} of {len(board.spans)} failed on {board.tries[index]} "
                f"tries: {first_line(err)}"
            ) from err
        log.warning(
            "%s: segment %d failed, once more: %s", task.job.name, index + 1, first_line(err)
        )
        waiting.insert(0, task)
        return
    board.stored.add(index)
    board.frames[index] = result.frames
    board.seconds += result.seconds


def _report(
    rt: Runtime,
    job: Job,
    board: _Board,
    writer: StatusWriter,
    keeper: LeaseKeeper,
    timeline: JobTimeline | None,
) -> None:
    """Progress across segments in status.json (every 2 s, after confirming the lease) and in
    the job's message."""
    progress = board.progress
    writer.status.progress = progress
    if writer.due:
        try:
            keeper.confirm()  # a cancelled or superseded run stops at its next look
        except StorageError as err:  # a hiccup: the heartbeat tries again
            log.warning("%s: could not confirm its lease: %s", job.name, first_line(err))
        writer.write()
    if rt.on_frame is not None:
        rt.on_frame(job, progress["done"], progress["total"])
    if timeline is not None:
        timeline.progress(progress["done"], progress["total"])


def _forget_if_decided(rt: Runtime, job: Job, spans: list[Span]) -> None:
    """After the lease was lost: a version that is over (cancelled, replaced) needs its segment
    results no more; a version taken back by another worker keeps them for it."""
    try:
        record = read_lease(rt.storage, job)
        if record is not None and record.final is None:
            return  # another attempt holds it and reuses what is stored
        for span in spans:
            rt.storage.delete(segment_key(job, job.version, span))
    except Exception as err:  # clutter at worst: a cleanup never fails a run
        log.warning("%s: segment results left behind: %s", job.name, first_line(err))


# -- the worker: one segment ----------------------------------------------------------------


def render_segment(
    rt: Runtime, task: SegmentTask, progress: Progress | None = None
) -> SegmentResult:
    """Render one segment from the job's request with the segment's stretch of the audio, store
    it (once: a conditional create), and say how long it took. Stores nothing when the job's
    lease has moved on (another attempt, a cancel, a decision)."""
    started = time.monotonic()
    span = task.span
    with tempfile.TemporaryDirectory(prefix="dropreel-seg-") as tmp:
        audio = _cut_audio(task, Path(tmp) / "segment.wav", rt)
        engine = rt.engine_loader(task.engine)
        plan = engine.check_inputs(replace(task.request, audio=audio, segment=task.index))
        frames = _exactly(engine.render(plan, progress), span.frames)
        path = Path(tmp) / "segment.mp4"
        fades = rt.settings.parallel_crossfade_seconds > 0  # joined by a second encode
        encode_mp4(frames, task.fps, path, **({"crf": INTERMEDIATE_CRF} if fades else {}))
        _still_ours(rt, task)
        try:
            rt.storage.put_if_absent(task.key, path.read_bytes(), "video/mp4")
        except PreconditionFailed:
            log.info("%s: segment %d was already stored", task.job.name, task.index)
    return SegmentResult(task.index, span.frames, time.monotonic() - started)


def _cut_audio(task: SegmentTask, dest: Path, rt: Runtime):
    """The segment's stretch of the recording (plus PAD_SECONDS past its end, silence past the
    recording's), as a WAV the engine reads like any dropped audio."""
    whole, span, fps = task.request.audio, task.span, task.fps
    rate = whole.sample_rate
    samples = _decoded(whole)
    start = round(span.start / fps * rate)
    end = round((span.end / fps + PAD_SECONDS) * rate)
    piece = samples[start:end]
    if len(piece) < end - start:
        piece = np.concatenate([piece, np.zeros(end - start - len(piece), np.float32)])
    write_wav(dest, piece, rate)
    return probe_audio(dest, rt.settings.max_audio_seconds, 0.0)


_recording: dict[Path, np.ndarray] = {}  # the last recording decoded, shared by its segments
_recording_lock = threading.Lock()


def _decoded(audio: AudioInfo) -> np.ndarray:
    """The recording at its own rate, decoded once for all the segments a process renders of
    it at once (not once per segment)."""
    with _recording_lock:
        if audio.path not in _recording:
            _recording.clear()
            _recording[audio.path] = audio.samples(audio.sample_rate)
        return _recording[audio.path]


def _exactly(frames, count: int):
    """The first `count` frames; the last one held if the engine made fewer."""
    last = None
    made = 0
    for frame in islice(frames, count):
        last, made = frame, made + 1
        yield frame
    for _ in range(count - made):
        if last is not None:
            yield last


def _still_ours(rt: Runtime, task: SegmentTask) -> None:
    """Raise LeaseLost unless the job's lease is still undecided at the task's attempt."""
    record = read_lease(rt.storage, task.job)
    if record is None or record.final is not None or record.attempt != task.attempt:
        raise LeaseLost(f"segment {task.index} of {task.job.name} is stale: not storing it")
