"""status.json: what a person (or `dropreel status`) reads about one job.

Written by the worker holding the lease at every transition; never read by the poller.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from config.costs import job_cost
from config.kinds import JobKind
from handlers.storage import Storage

if TYPE_CHECKING:
    from handlers.jobs import Job


class JobState(StrEnum):
    """The words status.json and `dropreel status` use for where a job is."""

    QUEUED = "queued"  # waiting to settle, for a worker, or for its next attempt
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the user cancelled it, or its inputs were deleted mid-render
    INCOMPLETE = "incomplete"  # a part is missing; status.json says what once it has waited
    # past the grace period (handlers/feedback.py)


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SlackPlace(BaseModel):
    """Where a job version's Slack message is: the job's thread, and this version's message in
    it (edited in place as the job goes on). Kept in status.json so that a later attempt, a
    later version and the outbox find them after a restart."""

    channel: str
    ts: str | None = Field(None, description="This version's message (None: not posted yet).")
    thread_ts: str | None = Field(
        None, description="The job's first message, which later versions reply to."
    )

    @property
    def thread(self) -> str | None:
        """The thread every later message of the job replies in."""
        return self.thread_ts or self.ts


class JobStatus(BaseModel):
    """The status document. `error` is in plain words; secrets never appear here."""

    state: JobState = Field(description="queued | running | done | failed | cancelled | incomplete")
    job: str
    kind: JobKind | None = None
    version: str
    attempt: int = 1
    max_attempts: int = 1
    engine: str | None = None
    preview: bool = False
    inputs: list[str] = Field(default_factory=list)
    output: str | None = None
    stage: str | None = None
    progress: dict[str, int] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    folder_settings: dict[str, dict[str, Any]] | None = Field(
        None,
        description="Defaults this job took from dropreel.json files: field -> {value, from}.",
    )
    adjustments: list[str] = Field(default_factory=list)
    video: dict[str, Any] | None = None
    speech: dict[str, Any] | None = Field(
        None, description="Script jobs: the speech made (key, length, settings, time, cost)."
    )
    error: str | None = None
    fix_by: Literal["user", "operator"] | None = Field(
        None,
        description="Whose move a failure is: user (fix or replace the file) or operator (the "
        "setup: a package, weights or a setting).",
    )
    notification: str | None = None
    worker: str | None = None
    updated_at: str = Field(default_factory=utcnow)
    gpu: str | None = Field(None, description="Hardware billed for the job: a GPU type, or cpu.")
    gpu_seconds: float | None = Field(
        None,
        description="Seconds billed for this job: the worker's time on it, plus, for a "
        "container's first job, the container's load time (load_seconds).",
    )
    load_seconds: float | None = Field(
        None, description="Of gpu_seconds, the container's load time (its first job only)."
    )
    cost_usd: float | None = Field(
        None,
        description="Estimate: gpu_seconds x the container's hourly price (GPU, CPU and memory, "
        "config/costs.py).",
    )
    slack: SlackPlace | None = Field(None, description="The job's Slack thread and message.")
    slack_channel: str | None = Field(None, description="prompt.json's Slack channel, if any.")
    callback_url: str | None = Field(None, description="prompt.json's callback URL, if any.")
    callback_events: list[str] | None = Field(
        None, description="prompt.json's callback events, if any."
    )
    callbacks: dict[str, str] = Field(
        default_factory=dict,
        description="Callback event id -> delivered, or failed: why (each event is sent once).",
    )

    @classmethod
    def fresh(
        cls, job: Job, state: JobState, attempt: int, max_attempts: int, **fields: Any
    ) -> JobStatus:
        """The first status of a job version at `attempt` (what the listing knows of it)."""
        return cls(
            state=state,
            job=job.name,
            kind=job.kind,
            version=job.version,
            attempt=attempt,
            max_attempts=max_attempts,
            inputs=[o.key for o in job.inputs],
            **fields,
        )


def write_status(storage: Storage, key: str, status: JobStatus) -> None:
    status.updated_at = utcnow()
    body = json.dumps(status.model_dump(), indent=2, ensure_ascii=False)
    # a lone surrogate (from a local file name) must not leave status.json stuck at "running"
    storage.put(key, body.encode("utf-8", "backslashreplace"), "application/json")


class StatusWriter:
    """One worker's status.json for one job version: the stage it is in, how long each stage
    took, progress written at most every `every` seconds, and the worker's metered time."""

    def __init__(self, storage: Storage, key: str, status: JobStatus, every: float) -> None:
        self.storage, self.key, self.status, self.every = storage, key, status, every
        self.started = self._stage_started = self._written = time.monotonic()
        self.extra_seconds = 0.0  # billed besides this run's own time (parallel segments)

    def write(self) -> None:
        write_status(self.storage, self.key, self.status)
        self._written = time.monotonic()

    def stage(self, name: str, write: bool = False) -> None:
        """Close the current stage's timing and enter `name`."""
        now = time.monotonic()
        if self.status.stage:
            self.status.timings[self.status.stage] = round(now - self._stage_started, 3)
        self.status.stage, self._stage_started = name, now
        if write:
            self.write()

    @property
    def due(self) -> bool:
        """True when the next progress step writes status.json."""
        return time.monotonic() - self._written >= self.every

    def progress(self, done: int, total: int) -> None:
        self.status.progress = {"done": done, "total": total}
        if self.due:
            self.write()

    def meter(self, gpu: str | None, usd_per_hour: float | None, load_seconds: float = 0.0) -> None:
        """Record the seconds billed for this job so far (`load_seconds`: the container's load
        time, carried by its first job) and their estimated price."""
        if gpu is None:
            return
        self.status.gpu = gpu
        self.status.load_seconds = round(load_seconds, 3) if load_seconds else None
        own = time.monotonic() - self.started + load_seconds
        self.status.gpu_seconds = round(own + self.extra_seconds, 3)
        if usd_per_hour is not None:
            self.status.cost_usd = job_cost(self.status.gpu_seconds, usd_per_hour)
