"""A job's timeline: people and machines hear about a job while it runs, not only at its end.

One Slack thread per job across its versions: the first message is posted when a worker claims
the job (what, which engine, an estimate of time and cost), edited in place at coarse progress
steps and at the outcome; a new version replies in the thread. Where the thread and the
version's message are (`JobStatus.slack`) is kept in status.json, which every run reads back
first (`carry_over`), so a later attempt, a later version and the outbox find them after any
restart: a later attempt edits the same message, the outbox's resend edits it again (an edit
is idempotent) instead of posting a second one.

Callbacks (docs/CALLBACKS.md) go out at the same moments: claimed, progress, done, failed. Each
event has a fixed id (job, version, event, step); a delivered id is recorded in status.json's
`callbacks`, and an id found there is never sent again, so a later attempt or a resend after a
crash does not repeat an event. A receiver can drop the rare repeat (a crash between delivery
and recording) by the id header.

Nothing here may fail a job: a Slack or callback error is logged and recorded, and the render
goes on.
"""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from config.costs import UnknownGpu, usd_per_hour
from gpu.registry import get_spec
from handlers.errors import ObjectNotFound, StorageError, first_line
from handlers.jobs import Job
from handlers.notify import JobEvent
from handlers.runtime import Runtime
from handlers.status import JobStatus, SlackPlace, StatusWriter, utcnow
from handlers.storage import Storage

log = logging.getLogger(__name__)

PROGRESS_STEPS = (25, 50, 75)
"""Percentages at which a running job's message is edited (coarse: Slack limits edits)."""


def carry_over(storage: Storage, job: Job, status: JobStatus) -> None:
    """Give a fresh status what the job's previous status.json knows about its timeline: the
    Slack thread (any earlier version), and for this same version (a later attempt) its
    message and the callbacks already delivered. One GET; a missing or unreadable status.json
    means a job without a thread yet."""
    try:
        old = JobStatus.model_validate_json(storage.get(job.status_key))
    except ObjectNotFound:  # a job's first run
        return
    except (StorageError, ValueError) as err:  # unreadable: the job starts a new thread
        log.warning("%s: could not read its earlier status: %s", job.name, first_line(err))
        return
    if old.version == job.version:
        status.slack, status.callbacks = old.slack, old.callbacks
    elif old.slack is not None and old.slack.thread is not None:
        status.slack = SlackPlace(channel=old.slack.channel, thread_ts=old.slack.thread)


def estimate(rt: Runtime, engine: str) -> str:
    """The claimed message's estimate, from the engine's declared figures: its longest render
    on its GPU, priced like status.json's cost (config/costs.py). Always labelled an estimate."""
    spec = get_spec(engine)
    if spec.preview:
        return "Estimate: a few seconds on CPU (preview engine)"
    if not spec.max_render_seconds:
        return "Estimate: not declared by this engine"
    minutes = spec.max_render_seconds / 60
    gpu = rt.gpu or spec.gpu
    text = f"Estimate: at most {minutes:.0f} min" + (f" on {gpu}" if gpu else "")
    rate = rt.usd_per_hour
    if rate is None and spec.gpu:
        try:
            rate = usd_per_hour(spec.gpu, overrides=rt.settings.gpu_prices)
        except UnknownGpu:
            rate = None
    if rate:
        text += f", at most ~${rate * spec.max_render_seconds / 3600:.2f}"
    return text


class JobTimeline:
    """One run's claimed and progress events (the outcome goes through `finished`)."""

    def __init__(self, rt: Runtime, job: Job, writer: StatusWriter) -> None:
        self.rt, self.job, self.writer = rt, job, writer
        self._step = 0
        self._last = time.monotonic()

    def claimed(self) -> None:
        """The job is routed and starts: post (or, on a later attempt, edit) its message."""
        status = self.writer.status
        self._send("claimed", estimate(self.rt, status.engine) if status.engine else None)

    def progress(self, done: int, total: int) -> None:
        """Edit the message when a new coarse step is reached, at most every
        `slack_progress_seconds`."""
        percent = 100 * done // total if total else 0
        step = max((s for s in PROGRESS_STEPS if s <= percent), default=0)
        now = time.monotonic()
        if step <= self._step or now - self._last < self.rt.settings.slack_progress_seconds:
            return
        self._step, self._last = step, now
        self._send("progress", step=step)

    def _send(self, name: str, estimate: str | None = None, step: int | None = None) -> None:
        status = self.writer.status
        event = JobEvent(
            status=status.model_copy(deep=True),
            folder=self.job.folder,
            inputs=[self.rt.storage.describe(k) for k in status.inputs],
            step=name,
            estimate=estimate,
        )
        update = getattr(self.rt.notifier, "update", None)
        if update is not None:
            try:
                place = update(event)
                if place is not None:
                    status.slack = place
            except Exception as err:  # the render goes on; the outcome is still announced
                log.warning("%s: Slack %s update failed: %s", self.job.name, name, first_line(err))
        send_callback(self.rt, event, status, step)
        self.writer.write()


def send_callback(rt: Runtime, event: JobEvent, status: JobStatus, step: int | None = None):
    """Deliver `event` to the job's callback URL if its filter wants it and it was not
    delivered before; record the result in `status.callbacks`."""
    url = status.callback_url or rt.settings.callback_url
    wanted = status.callback_events or rt.settings.callback_events
    if rt.callbacks is None or not url or event.name not in wanted:
        return
    event_id = callback_id(status, event.name, step)
    if event_id in status.callbacks:
        return
    host = urlsplit(url).hostname or ""
    allowed = rt.settings.callback_hosts
    if status.callback_url and allowed and not any(_host_matches(host, a) for a in allowed):
        status.callbacks[event_id] = (
            f"failed: prompt.json's callback_url names the host {host!r}, which the operator "
            "does not allow (DROPREEL_CALLBACK_HOSTS): use an allowed host or ask the operator"
        )
        return
    try:
        rt.callbacks.send(url, event_id, callback_body(event, event_id))
        status.callbacks[event_id] = "delivered"
    except Exception as err:
        log.warning("%s: callback %s failed: %s", status.job, event.name, first_line(err))
        status.callbacks[event_id] = f"failed: {first_line(err)}"


def _host_matches(host: str, allowed: str) -> bool:
    """'n8n.example.com' allows that host; '.example.com' allows its subdomains too."""
    allowed = allowed.lower()
    if allowed.startswith("."):
        return host == allowed[1:] or host.endswith(allowed)
    return host == allowed


def callback_id(status: JobStatus, name: str, step: int | None = None) -> str:
    """The same id for the same event of the same job version, whoever sends it, whenever."""
    job = hashlib.sha256(status.job.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{job}-{status.version}-{name}" + (f"-{step}" if step is not None else "")


def callback_body(event: JobEvent, event_id: str) -> dict[str, Any]:
    """The JSON a callback receiver gets: the event's name and id, then the job's facts."""
    return {
        "id": event_id,
        "event": event.name,
        "sent_at": utcnow(),
        "progress": event.status.progress,
        "fix_by": event.status.fix_by,
        **event.to_dict(),
    }
