"""The notifier port, the callback port, and the event they receive.

Notifiers live in `infra/` (console, JSON-lines log, Slack). A notifier must never fail a job:
the lifecycle records a notifier error in status.json and moves on. `notify` is told the end
(done or failed); a notifier that can also show a job while it runs (Slack, one message edited
in place) has `update` (the `Timeline` protocol), which the lifecycle calls when the job is
claimed and at coarse progress steps (handlers/timeline.py).

An event is the job's status (a snapshot of status.json) plus the few things only a message
needs: where the files are in words a person can paste, a link, the poster bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from handlers.status import JobState, JobStatus, SlackPlace


@dataclass(frozen=True)
class JobEvent:
    """What people are told about a finished or failed job (or files that make no job)."""

    status: JobStatus
    folder: str
    inputs: list[str] = field(default_factory=list)  # where the inputs are (s3://..., /path)
    video_location: str | None = None
    video_url: str | None = None
    poster_key: str | None = None
    poster_jpeg: bytes | None = field(default=None, repr=False)
    # set when the outbox sends the event again (its first sender died while or after
    # notifying): when the outcome was decided, so the message, if out, is no older than this.
    # A notifier that can look (Slack's) checks for it before sending.
    resend_since: str | None = None
    # while the job runs (Timeline.update): "claimed" or "progress"; None for the outcome
    step: str | None = None
    estimate: str | None = None  # the claimed message's time and cost estimate, in words

    @property
    def name(self) -> str:
        """The event's name in callbacks and filters: claimed, progress, done or failed."""
        return self.step or self.state.value

    @property
    def state(self) -> JobState:
        return self.status.state

    @property
    def video_key(self) -> str | None:
        return self.status.output if self.state is JobState.DONE else None

    def to_dict(self) -> dict[str, Any]:
        """The event as one flat JSON object (the JSON-lines notification log)."""
        status, video = self.status, self.status.video or {}
        return {
            "state": status.state,
            "job": status.job,
            "folder": self.folder,
            "kind": status.kind,
            "engine": status.engine,
            "version": status.version,
            "preview": status.preview,
            "video_key": self.video_key,
            "video_location": self.video_location,
            "video_url": self.video_url,
            "poster_key": self.poster_key,
            "duration_seconds": video.get("duration_seconds"),
            "width": video.get("width"),
            "height": video.get("height"),
            "fps": video.get("fps"),
            "stage_seconds": status.timings,
            "settings": status.settings,
            "adjustments": status.adjustments,
            "error": status.error,
            "inputs": self.inputs,
            "attempts": status.attempt,
            "gpu": status.gpu,
            "gpu_seconds": status.gpu_seconds,
            "cost_usd": status.cost_usd,  # an estimate: see config/costs.py
        }

    def summary(self) -> str:
        """One line a person can read."""
        status = self.status
        if self.state is JobState.DONE:
            video = status.video or {}
            tag = " (preview)" if status.preview else ""
            size = f"{video['width']}x{video['height']}" if video.get("width") else ""
            cost = (
                f" ~${status.cost_usd:.4f} on {status.gpu}" if status.cost_usd is not None else ""
            )
            return (
                f"done: {status.job} [{status.kind}, {status.engine}{tag}] "
                f"{video.get('duration_seconds') or 0:.2f}s {size} -> {self.video_location}{cost}"
            )
        return f"{status.state}: {status.job} [{status.kind}]: {status.error}"


class Notifier(Protocol):
    def notify(self, event: JobEvent) -> None: ...


class Timeline(Protocol):
    """A notifier that shows a job while it runs: `update` posts or edits the version's
    message and says where it is (None when it keeps no message)."""

    def update(self, event: JobEvent) -> SlackPlace | None: ...


class CallbackSender(Protocol):
    """Delivers one signed JSON callback (infra/notify/callbacks.py); raises if it could not."""

    def send(self, url: str, event_id: str, body: dict[str, Any]) -> None: ...
