"""One job version from claim to notification.

download -> validate -> load engine -> render + encode (streamed) -> upload -> mark done -> notify.
status.json is rewritten at each transition. Nothing is written next to the inputs until the
MP4 is complete on local disk, and the MP4 lands with one atomic PUT, so no partial video is ever
visible. Permanent errors fail the job at once; transient ones leave the lease to expire, and
the next tick takes the job back (attempt + 1) until max_attempts.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from config.costs import job_cost
from config.settings import Settings
from gpu.encode import encode_mp4, poster_jpeg
from gpu.engine import Engine, RenderRequest
from gpu.errors import EngineError, EngineNotFound
from gpu.registry import get_spec, load_engine
from handlers import validate
from handlers.claims import Lease, LeaseKeeper, mark_once
from handlers.errors import DropreelError, InputRejected, LeaseLost
from handlers.jobs import Job
from handlers.notify import JobEvent, Notifier
from handlers.prompt import PromptFile, parse_prompt
from handlers.status import JobStatus, write_status
from handlers.storage import Storage

log = logging.getLogger(__name__)

STATUS_EVERY_SECONDS = 2.0
FrameObserver = Callable[[Job, int, int], None]


@dataclass
class Runtime:
    """What a worker needs: where the bucket is, the settings, who to tell."""

    storage: Storage
    settings: Settings
    notifier: Notifier
    engine_loader: Callable[[str], Engine] = load_engine
    on_frame: FrameObserver | None = None
    renders: list[str] = field(default_factory=list)
    gpu: str | None = None  # hardware this worker bills for ("L40S", "cpu"); None: not metered
    usd_per_hour: float | None = None  # its estimated price (config/costs.py)


def resolve_engine(job: Job, prompt: PromptFile | None, settings: Settings) -> str:
    if prompt and prompt.task and prompt.task != job.kind:
        raise InputRejected(
            f"prompt.json says task={prompt.task!r} but the files make a {job.kind} job "
            "(image + audio = talking_head, prompt + image = image_to_video, prompt alone = "
            "text_to_video): fix the task field or the files"
        )
    name = (prompt.engine if prompt and prompt.engine else None) or settings.engine_for(job.kind)
    try:
        spec = get_spec(name)
    except EngineNotFound as err:
        if prompt and prompt.engine:
            raise InputRejected(f"{_name(job.prompt)}: {err}: fix the engine field") from err
        raise
    if job.kind not in spec.kinds:
        raise InputRejected(
            f"engine {name!r} does not make {job.kind} videos; it makes {', '.join(spec.kinds)}"
        )
    return name


def run_job(rt: Runtime, job: Job, lease: Lease) -> str:
    """Render one claimed job version. Returns the final state for this worker."""
    settings, storage = rt.settings, rt.storage
    status = JobStatus(
        state="running",
        job=job.name,
        kind=job.kind,
        version=job.version,
        attempt=lease.attempt,
        max_attempts=settings.max_attempts,
        inputs=[o.key for o in job.inputs],
        worker=lease.worker,
        stage="download",
    )
    stage_started = job_started = time.monotonic()

    def stage(name: str) -> None:
        nonlocal stage_started
        now = time.monotonic()
        if status.stage:
            status.timings[status.stage] = round(now - stage_started, 3)
        status.stage, stage_started = name, now

    write_status(storage, job.status_key, status)
    rt.renders.append(job.name)
    try:
        with (
            LeaseKeeper(lease, settings.heartbeat_interval) as keeper,
            tempfile.TemporaryDirectory(prefix="dropreel-") as tmp,
        ):
            work = Path(tmp)
            validate.check_sizes(job.inputs, settings)
            local = _download(storage, job, work)
            stage("validate")
            prompt = (
                parse_prompt(
                    local["prompt"].read_bytes(), _name(job.prompt), settings.max_prompt_bytes
                )
                if job.prompt
                else None
            )
            validate.check_prompt(job.kind, prompt, _name(job.prompt))
            request = _request(job, local, prompt, settings)
            engine_name = resolve_engine(job, prompt, settings)
            status.engine = engine_name
            status.preview = get_spec(engine_name).preview
            stage("load")
            write_status(storage, job.status_key, status)
            engine = rt.engine_loader(engine_name)
            stage("check")
            plan = engine.check_inputs(request)
            status.settings = plan.describe()
            status.adjustments = plan.adjustments
            stage("render")
            status.progress = {"done": 0, "total": plan.num_frames}
            write_status(storage, job.status_key, status)
            last_write = time.monotonic()

            def progress(done: int, total: int) -> None:
                nonlocal last_write
                keeper.check()
                status.progress = {"done": done, "total": total}
                if rt.on_frame:
                    rt.on_frame(job, done, total)
                if time.monotonic() - last_write >= STATUS_EVERY_SECONDS:
                    write_status(storage, job.status_key, status)
                    last_write = time.monotonic()

            video = work / "out.mp4"
            result = encode_mp4(
                engine.render(plan, progress),
                plan.fps,
                video,
                audio=local.get("audio") if job.kind == "talking_head" else None,
            )
            stage("upload")
            keeper.confirm()
            storage.put(job.output_key, video, "video/mp4")
            poster = poster_jpeg(result.first_frame) if result.first_frame is not None else None
            if poster:
                storage.put(job.poster_key, poster, "image/jpeg")
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
            stage("notify")
            status.state, status.progress = "done", None
            _meter(rt, status, job_started)
            keeper.confirm()
            write_status(storage, job.status_key, status)
            if not mark_once(storage, job, "done"):
                return "done"
    except LeaseLost as err:
        log.warning("%s: %s; stopping without writing outputs", job.name, err)
        return "lost"
    except (DropreelError, EngineError, Exception) as err:
        _meter(rt, status, job_started)
        return _handle_failure(rt, job, lease, status, err)

    # The done marker now carries the state; the lease and older versions' markers are clutter.
    for key in [lease.key, *job.stale_marker_keys()]:
        _quietly(storage.delete, key)
    event = _event(rt, job, status, "done", poster)
    _notify(rt, job, status, event)
    return "done"


def _meter(rt: Runtime, status: JobStatus, started: float) -> None:
    """Record the worker's seconds on this job and their estimated price."""
    if rt.gpu is None:
        return
    status.gpu = rt.gpu
    status.gpu_seconds = round(time.monotonic() - started, 3)
    if rt.usd_per_hour is not None:
        status.cost_usd = job_cost(status.gpu_seconds, rt.usd_per_hour)


def _handle_failure(rt: Runtime, job: Job, lease: Lease, status: JobStatus, err: Exception) -> str:
    permanent = getattr(err, "permanent", False)
    message = str(err) if isinstance(err, DropreelError | EngineError) else _plain(err)
    status.error = message
    if permanent or lease.attempt >= rt.settings.max_attempts:
        if not permanent:
            status.error = f"gave up after {lease.attempt} attempts; last error: {message}"
        log.info("%s failed: %s", job.name, status.error)
        return fail_job(rt, job, status)
    log.warning("%s attempt %d failed (will retry): %s", job.name, lease.attempt, message)
    status.state = "queued"
    status.error = f"attempt {lease.attempt} failed, will retry: {message}"
    _quietly(write_status, rt.storage, job.status_key, status)
    return "retry"


def fail_job(rt: Runtime, job: Job, status: JobStatus) -> str:
    """Mark the version failed; the single winner writes status and notifies once."""
    status.state, status.progress = "failed", None
    if not mark_once(rt.storage, job, "failed"):
        return "failed"
    _quietly(write_status, rt.storage, job.status_key, status)
    _quietly(rt.storage.delete, job.marker_key("lease"))
    _notify(rt, job, status, _event(rt, job, status, "failed", None))
    return "failed"


def _notify(rt: Runtime, job: Job, status: JobStatus, event: JobEvent) -> None:
    started = time.monotonic()
    try:
        rt.notifier.notify(event)
        status.notification = "sent"
    except Exception as err:  # a notifier must never fail or re-render a job
        log.error("notification for %s failed: %s", job.name, _plain(err))
        status.notification = f"failed: {_plain(err)}"
    status.timings["notify"] = round(time.monotonic() - started, 3)
    _quietly(write_status, rt.storage, job.status_key, status)


def _event(rt: Runtime, job: Job, status: JobStatus, state: str, poster: bytes | None) -> JobEvent:
    video = status.video or {}
    url = None
    if state == "done":
        url = _quietly(rt.storage.presigned_url, job.output_key, rt.settings.link_expiry_seconds)
    return JobEvent(
        state=state,
        job=job.name,
        folder=job.folder,
        kind=job.kind,
        engine=status.engine,
        version=job.version,
        preview=status.preview,
        video_key=job.output_key if state == "done" else None,
        video_location=rt.storage.describe(job.output_key) if state == "done" else None,
        video_url=url,
        poster_key=job.poster_key if poster else None,
        poster_jpeg=poster,
        duration_seconds=video.get("duration_seconds"),
        width=video.get("width"),
        height=video.get("height"),
        fps=video.get("fps"),
        stage_seconds=dict(status.timings),
        settings=dict(status.settings),
        adjustments=list(status.adjustments),
        error=status.error,
        inputs=[rt.storage.describe(k) for k in status.inputs],
        attempts=status.attempt,
        gpu=status.gpu,
        gpu_seconds=status.gpu_seconds,
        cost_usd=status.cost_usd,
    )


def _download(storage: Storage, job: Job, work: Path) -> dict[str, Path]:
    local: dict[str, Path] = {}
    for slot in ("image", "audio", "prompt"):
        obj = getattr(job, slot)
        if obj is None:
            continue
        suffix = "." + obj.key.rpartition(".")[2].lower()
        name = _name(obj)
        # keep the user's file name so every message names it; fall back for odd names
        safe = len(name.encode()) <= 200 and name.isprintable() and not name.startswith(".")
        dest = work / slot / name if safe else work / slot / f"{slot}{suffix}"
        dest.parent.mkdir(exist_ok=True)
        storage.download(obj.key, dest)
        local[slot] = dest
    return local


def _request(
    job: Job, local: dict[str, Path], prompt: PromptFile | None, settings: Settings
) -> RenderRequest:
    """The engine's request: inputs decoded and checked once, here, under the settings' limits."""
    values = prompt.model_dump(exclude={"task", "engine"}) if prompt else {}
    return RenderRequest(
        kind=job.kind,
        image=validate.image(local["image"], settings) if "image" in local else None,
        audio=validate.audio(local["audio"], settings) if "audio" in local else None,
        **values,
    )


def _name(obj: object) -> str:
    return getattr(obj, "key", "prompt.json").rpartition("/")[2]


def _plain(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}"[:500] if text else type(err).__name__


def _quietly(fn, *args):
    try:
        return fn(*args)
    except Exception as err:
        log.warning("%s failed: %s", getattr(fn, "__name__", fn), _plain(err))
        return None
