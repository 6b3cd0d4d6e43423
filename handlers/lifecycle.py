"""One job version from claim to notification, in three steps.

    prepare: route (prompt.json, engine) -> download -> validate -> [speech] -> the request
    render:  load engine -> check_inputs -> render + encode (streamed) to a local MP4
    publish: upload [the speech,] the MP4 and poster -> the lease turns final (done) -> complete

A script job speaks first (handlers/speech.py): its speech becomes the talking head's audio.

`complete` carries out a final lease: status.json, the notification, then `<version>.done` or
`.failed`, which records it as sent (the lease stays a while: handlers/claims.py). It is
idempotent, so the outbox (`resend`, run by the next tick for a final lease with no marker whose
holder died) finishes whatever a crash interrupted.

status.json is rewritten at each stage (`StatusWriter`). Nothing is written next to the inputs
until the MP4 is complete on local disk, and the MP4 lands with one atomic PUT, so no partial
video is ever visible. Permanent errors fail the job at once; transient ones leave the lease to
expire, and the next tick takes the job back (attempt + 1) until max_attempts.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from config.kinds import JobKind
from config.settings import Settings
from gpu.encode import EncodeResult, encode_mp4, poster_jpeg
from gpu.engine import RenderRequest
from gpu.registry import get_spec
from gpu.two_speakers import write_mix
from handlers import layout, long_clips, segments, validate
from handlers.claims import Lease, LeaseKeeper, write_marker
from handlers.errors import (
    LeaseLost,
    StorageError,
    first_line,
    fix_by,
    is_permanent,
    plain_words,
)
from handlers.jobs import Job
from handlers.notify import JobEvent, Notifier
from handlers.prompt import NOTIFY_FIELDS, PromptFile
from handlers.routing import Route, file_name, mark_speech, route
from handlers.runtime import Runtime
from handlers.speech import SPEECH_FIELDS, Speech, speak
from handlers.status import JobState, JobStatus, StatusWriter, write_status
from handlers.storage import Storage
from handlers.timeline import JobTimeline, carry_over, send_callback

log = logging.getLogger(__name__)

STATUS_EVERY_SECONDS = 2.0


class RunOutcome(StrEnum):
    """How one worker's run of a job version ended."""

    DONE = "done"  # rendered and published (or another worker had just finished it)
    FAILED = "failed"  # failed for good
    RETRY = "retry"  # failed this attempt; the lease expires and the job is taken back
    LOST = "lost"  # another worker took the lease; nothing written
    STALE = "stale"  # the ticket's version is gone or finished; nothing written
    CANCELLED = "cancelled"  # the user cancelled it (handlers/control.py); nothing published


def run_job(
    rt: Runtime,
    job: Job,
    lease: Lease,
    routed: Route | None = None,
    keeper: LeaseKeeper | None = None,
) -> RunOutcome:
    """Render one claimed job version. `routed`: the trigger's decision, trusted as it is;
    without it the worker routes the job itself. `keeper`: the heartbeat that has kept `lease`
    alive since the claim (a queued job); without it the run starts its own."""
    if keeper is None:
        with LeaseKeeper(lease, rt.settings.heartbeat_interval) as keeper:
            return run_job(rt, job, lease, routed, keeper)
    try:
        keeper.confirm()  # a stale run (its lease taken back while it waited) writes nothing
    except LeaseLost as err:
        log.warning("%s: %s before it started; skipping", job.name, err)
        return RunOutcome.LOST
    status = JobStatus.fresh(
        job,
        JobState.RUNNING,
        lease.attempt,
        rt.settings.max_attempts,
        worker=lease.worker,
        stage="download",
    )
    carry_over(rt.storage, job, status)
    writer = StatusWriter(rt.storage, job.status_key, status, STATUS_EVERY_SECONDS)
    writer.write()
    if rt.on_start is not None:
        rt.on_start(job)
    timeline = JobTimeline(rt, job, writer)
    try:
        with tempfile.TemporaryDirectory(prefix="dropreel-") as tmp:
            work = prepare(rt, job, routed, writer, Path(tmp), timeline)
            result = render(rt, job, work, writer, keeper, timeline)
            poster = publish(rt, job, work, writer, keeper, result)
            lease.finish(status)  # the outcome is decided here, once: done
    except LeaseLost as err:
        log.warning("%s: %s; stopping without writing outputs", job.name, err)
        return RunOutcome.LOST
    except Exception as err:
        writer.meter(rt.gpu, rt.usd_per_hour, rt.take_load_seconds())
        return _handle_failure(rt, job, keeper, status, err)
    return complete(rt, job, lease, poster)


def complete(rt: Runtime, job: Job, lease: Lease, poster: bytes | None = None) -> RunOutcome:
    """Carry out a final lease: status.json, the notification, then the done, failed or
    cancelled marker, which records the notification as sent; the lease stays (see
    handlers/claims.py, "kept lease"). Safe to run again after a crash at any step; a step that
    fails for storage reasons leaves the lease for the outbox."""
    final = lease.final
    assert final is not None, "complete() needs a final lease"
    outcome = _OUTCOME_OF.get(final.state, RunOutcome.FAILED)
    status = final.model_copy(deep=True)
    try:
        write_status(rt.storage, job.status_key, status)
    except StorageError as err:
        log.warning("%s: could not record %s, the next tick will: %s", job.name, outcome, err)
        return outcome
    if outcome is RunOutcome.DONE:  # older versions' markers and the segments: clutter now
        for key in [*job.stale_marker_keys(), *segments.leftover_keys(job, status)]:
            _quietly(rt.storage.delete, key)
    if outcome is not RunOutcome.CANCELLED:  # the user cancelled it: nothing to announce
        _notify(rt, job, status, poster)
    try:
        write_marker(rt.storage, job, final)
    except StorageError as err:
        log.warning("%s: could not record %s as sent, the outbox will: %s", job.name, outcome, err)
        return outcome
    lease.retire()
    if outcome is RunOutcome.DONE:  # once the job is out of the way: this version's writing
        # record is clutter too, as the video's made-<etag>.json, written before the lease
        # turned final, names it from here on (handlers/layout.py)
        _quietly(rt.storage.delete, layout.writing_key(job.folder, job.meta_stem, job.version))
    return outcome


_OUTCOME_OF = {JobState.DONE: RunOutcome.DONE, JobState.CANCELLED: RunOutcome.CANCELLED}


def resend(rt: Runtime, job: Job, lease: Lease) -> RunOutcome:
    """The outbox: finish a final lease whose holder died before the notification was recorded
    as sent (`lease` was just taken back from it)."""
    poster = None
    if lease.final is not None and lease.final.state is JobState.DONE:
        poster = _quietly(rt.storage.get, job.poster_key)
    if lease.final is not None:  # callbacks delivered after the decision are not sent again
        recorded = lease.final.model_copy(deep=True)
        carry_over(rt.storage, job, recorded)
        lease.final.callbacks.update(recorded.callbacks)
    since = lease.final.updated_at if lease.final is not None else None
    resending = replace(rt, notifier=_Resending(rt.notifier, since))
    with LeaseKeeper(lease, rt.settings.heartbeat_interval):
        return complete(resending, job, lease, poster)


@dataclass(frozen=True)
class _Resending:
    """The runtime's notifier, told that each event is a resend (`JobEvent.resend_since`)."""

    notifier: Notifier
    since: str | None

    def notify(self, event: JobEvent) -> None:
        self.notifier.notify(replace(event, resend_since=self.since or event.status.updated_at))


@dataclass(frozen=True)
class Work:
    """What the prepare step hands on: the engine, its request, where the MP4 is made."""

    engine: str
    request: RenderRequest
    audio: Path | None  # the track muxed into the MP4 (talking-head and dubbing jobs)
    video: Path
    speech: Speech | None = None  # made from a script, published next to the video
    prompt: PromptFile | None = None  # the checked prompt (segments of a parallel render)


def prepare(
    rt: Runtime,
    job: Job,
    routed: Route | None,
    writer: StatusWriter,
    tmp: Path,
    timeline: JobTimeline | None = None,
) -> Work:
    """Route the job (unless the trigger did) and say so (the claimed message), download its
    inputs, check them; a script job then speaks its script, and the speech is the talking
    head's audio."""
    routed = routed or route(rt.storage, job, rt.settings)
    mark_speech(job, routed.prompt)
    writer.status.kind = job.kind
    writer.status.engine = routed.engine  # known from here on, whatever fails later
    writer.status.folder_settings = routed.folder_settings or None
    writer.status.preview = get_spec(routed.engine).preview
    if routed.prompt is not None:
        writer.status.slack_channel = routed.prompt.slack_channel
        writer.status.callback_url = routed.prompt.callback_url
        writer.status.callback_events = routed.prompt.callback_events
    if timeline is not None:
        timeline.claimed()
    local = download_inputs(rt.storage, job, tmp)
    writer.stage("validate")
    request = render_request(job, local, routed.prompt, rt.settings)
    speech = speak(rt, job, local, routed.prompt, writer, tmp) if job.speaks else None
    if speech is not None:  # the talking head's audio, checked like a dropped recording
        local["audio"] = speech.path
        request = replace(request, audio=validate.audio(speech.path, rt.settings))
    if request.voices:  # two speakers: the video's sound is their mix
        local["audio"] = write_mix(request.voices, request.speaking, tmp / "speakers.wav")
        request = replace(request, audio=validate.audio(local["audio"], rt.settings))
    audio = local.get("audio") if job.kind in (JobKind.TALKING_HEAD, JobKind.DUBBING) else None
    return Work(routed.engine, request, audio, tmp / "out.mp4", speech, routed.prompt)


def render(
    rt: Runtime,
    job: Job,
    work: Work,
    writer: StatusWriter,
    keeper: LeaseKeeper,
    timeline: JobTimeline | None = None,
) -> EncodeResult:
    """Load the engine, plan, and stream its frames into the local MP4 (a long talking head:
    in segments on many workers, handlers/segments.py; a video longer than the model's clip:
    clip after clip, handlers/long_clips.py)."""
    if segments.wanted(rt, job, work):
        return segments.render_in_segments(rt, job, work, writer, keeper, timeline)
    status = writer.status
    writer.stage("load", write=True)
    engine = rt.engine_loader(work.engine)
    writer.stage("check")
    clips = long_clips.plan_clips(work.engine, engine, work.request)
    plan = engine.check_inputs(clips.first if clips else work.request)
    status.settings = plan.describe()
    status.adjustments = plan.adjustments
    total = clips.frames_at(plan.fps) if clips else plan.num_frames
    if clips:
        status.settings.update(clips.describe(plan))
    status.progress = {"done": 0, "total": total}
    writer.stage("render", write=True)

    def progress(done: int, total: int) -> None:
        keeper.check()
        if rt.on_frame is not None:
            rt.on_frame(job, done, total)
        if writer.due:  # a cancelled or superseded run stops here, before writing anything
            try:
                keeper.confirm()
            except StorageError as err:  # a hiccup: the heartbeat tries again
                log.warning("%s: could not confirm its lease: %s", job.name, first_line(err))
        writer.progress(done, total)
        if timeline is not None:
            timeline.progress(done, total)

    frames = (
        long_clips.frames(engine, plan, clips, progress) if clips else engine.render(plan, progress)
    )
    return encode_mp4(frames, plan.fps, work.video, audio=work.audio)


def publish(
    rt: Runtime,
    job: Job,
    work: Work,
    writer: StatusWriter,
    keeper: LeaseKeeper,
    result: EncodeResult,
) -> bytes | None:
    """Upload the MP4 and its poster while the lease is still ours; status.json says done.
    Returns the poster's JPEG bytes (None for a video without frames)."""
    status = writer.status
    writer.stage("upload")
    keeper.confirm()
    if work.speech is not None:
        rt.storage.put(work.speech.key, work.speech.path, "audio/wav")
    record = {"video": job.output_key}
    if not job.output_taken:  # <stem>.mp4 is ours from here on (see handlers/layout.py)
        rt.storage.put(layout.writing_key(job.folder, job.meta_stem, job.version), _json(record))
    etag = rt.storage.put(job.output_key, work.video, "video/mp4")
    made = _json({**record, "etag": layout.bare_etag(etag)})  # never an input, even renamed
    rt.storage.put(layout.made_key(job.folder, job.meta_stem, etag), made, "application/json")
    poster = poster_jpeg(result.first_frame) if result.first_frame is not None else None
    if poster:
        rt.storage.put(job.poster_key, poster, "image/jpeg")
    status.video = {
        "key": job.output_key,
        "frames": result.frames,
        "width": result.width,
        "height": result.height,
        "fps": result.fps,
        "duration_seconds": round(result.duration_seconds, 3),
        "audio": result.has_audio,
    }
    status.output = job.output_key
    writer.stage("notify")
    status.state, status.progress = JobState.DONE, None
    writer.meter(rt.gpu, rt.usd_per_hour, rt.take_load_seconds())
    return poster


def _handle_failure(
    rt: Runtime, job: Job, keeper: LeaseKeeper, status: JobStatus, err: Exception
) -> RunOutcome:
    try:
        keeper.confirm()  # a run that lost its lease leaves the job's status to the new holder
    except LeaseLost as lost:
        log.warning("%s: %s; not recording its error: %s", job.name, lost, first_line(err))
        return RunOutcome.LOST
    except StorageError as down:  # the lease expires and the next tick takes the job back
        log.warning("%s failed, storage unreachable: %s", job.name, first_line(down))
        return RunOutcome.RETRY
    lease = keeper.lease
    permanent = is_permanent(err)
    message = plain_words(err)
    status.error = message
    status.fix_by = fix_by(err)
    if permanent or lease.attempt >= rt.settings.max_attempts:
        if not permanent:
            status.error = f"gave up after {lease.attempt} attempts; last error: {message}"
        log.info("%s failed: %s", job.name, status.error)
        return fail_job(rt, job, lease, status)
    log.warning("%s attempt %d failed (will retry): %s", job.name, lease.attempt, message)
    status.state = JobState.QUEUED
    status.error = f"attempt {lease.attempt} failed, will retry: {message}"
    _quietly(write_status, rt.storage, job.status_key, status)
    return RunOutcome.RETRY


def fail_unstarted(rt: Runtime, job: Job, lease: Lease, error: str, **fields) -> RunOutcome:
    """Fail a version no worker is running, on the lease the caller holds (attempts used up,
    engine not deployed)."""
    status = JobStatus.fresh(
        job, JobState.FAILED, lease.attempt, rt.settings.max_attempts, error=error, **fields
    )
    carry_over(rt.storage, job, status)  # its thread, its message, its callbacks
    with LeaseKeeper(lease, rt.settings.heartbeat_interval):
        return fail_job(rt, job, lease, status)


def fail_job(rt: Runtime, job: Job, lease: Lease, status: JobStatus) -> RunOutcome:
    """Turn the lease final (failed), then record and announce it. A lease lost meanwhile means
    someone else decides the outcome (it may be done): nothing is written."""
    status.state, status.progress = JobState.FAILED, None
    try:
        lease.finish(status)
    except LeaseLost as err:
        log.warning("%s: %s; not recording its failure", job.name, err)
        return RunOutcome.LOST
    except StorageError as err:  # the lease expires; the next tick decides again
        log.warning("%s: could not record its failure: %s", job.name, first_line(err))
        return RunOutcome.RETRY
    return complete(rt, job, lease)


def _notify(rt: Runtime, job: Job, status: JobStatus, poster: bytes | None) -> None:
    event = _event(rt, job, status, poster)
    started = time.monotonic()
    try:
        rt.notifier.notify(event)
        status.notification = "sent"
    except Exception as err:  # a notifier must never fail or re-render a job
        log.error("notification for %s failed: %s", job.name, first_line(err))
        status.notification = f"failed: {first_line(err)}"
    send_callback(rt, event, status)
    status.timings["notify"] = round(time.monotonic() - started, 3)
    _quietly(write_status, rt.storage, job.status_key, status)


def _event(rt: Runtime, job: Job, status: JobStatus, poster: bytes | None) -> JobEvent:
    done = status.state is JobState.DONE
    return JobEvent(
        status=status.model_copy(deep=True),
        folder=job.folder,
        inputs=[rt.storage.describe(k) for k in status.inputs],
        video_location=rt.storage.describe(job.output_key) if done else None,
        video_url=(
            _quietly(rt.storage.presigned_url, job.output_key, rt.settings.link_expiry_seconds)
            if done
            else None
        ),
        poster_key=job.poster_key if poster else None,
        poster_jpeg=poster,
    )


def download_inputs(storage: Storage, job: Job, work: Path) -> dict[str, Path]:
    local: dict[str, Path] = {}
    for slot in ("image", "video", "audio", "script", "voice", *layout.SPEAKER_TAGS):
        obj = getattr(job, slot)
        if obj is None:
            continue
        suffix = "." + obj.key.rpartition(".")[2].lower()
        name = file_name(obj)
        # keep the user's file name so every message names it; fall back for odd names
        safe = len(name.encode()) <= 200 and name.isprintable() and not name.startswith(".")
        dest = work / slot / name if safe else work / slot / f"{slot}{suffix}"
        dest.parent.mkdir(exist_ok=True)
        storage.download(obj.key, dest)
        local[slot] = dest
    return local


def render_request(
    job: Job, local: dict[str, Path], prompt: PromptFile | None, settings: Settings
) -> RenderRequest:
    """The engine's request: inputs decoded and checked once, here, under the settings' limits."""
    skip = {"task", "engine", "parallel", *SPEECH_FIELDS, *NOTIFY_FIELDS}
    values = prompt.model_dump(exclude=skip) if prompt else {}
    if values.get("speakers"):
        values["speakers"] = tuple(tuple(s["box"]) for s in values["speakers"])
    voices = None
    if "speaker1" in local and "speaker2" in local:
        voices = tuple(validate.audio(local[s], settings) for s in layout.SPEAKER_TAGS)
    return RenderRequest(
        voices=voices,  # type: ignore[arg-type]
        kind=job.kind,
        image=validate.image(local["image"], settings) if "image" in local else None,
        video=validate.video(local["video"], settings) if "video" in local else None,
        audio=validate.audio(local["audio"], settings) if "audio" in local else None,
        **values,
    )


def _json(record: dict[str, str]) -> bytes:
    return json.dumps(record, ensure_ascii=False).encode()


def _quietly(fn, *args):
    try:
        return fn(*args)
    except Exception as err:
        log.warning("%s failed: %s", getattr(fn, "__name__", fn), first_line(err))
        return None
