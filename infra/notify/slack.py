"""Slack notifications: a job's timeline in one thread, written for people.

Each job has one thread across its versions. A version's message is posted when a worker claims
it (what, which engine, an estimate of time and cost), edited in place (`chat.update`) at coarse
progress steps and at the outcome; the first version's message starts the thread and later
versions reply in it (handlers/timeline.py keeps where, in status.json). A job that fails
before it is claimed gets its outcome as a new message (or a reply) instead.

A finished job: its name and folder, kind, engine and profile, a preview marker, the video's
length, the time each stage took, a presigned link to the MP4 (its expiry said in words), and
the poster frame, uploaded with `files_upload_v2` into the message's thread (or shown inline
when the bucket is public). A failed job: the error in plain words and where the inputs are.

Slack trouble never fails or re-renders a job. Rate limits (HTTP 429) are waited out for as long
as Slack's Retry-After says, up to `slack_max_wait_seconds` in all; server and network errors are
retried with exponential backoff; errors that no retry can fix (bad token, unknown channel) are
raised at once with what to do. The lifecycle records whatever is raised in status.json. The bot
token and webhook URL never appear in a message, log line or error.

An incoming-webhook URL works too (`DROPREEL_SLACK_WEBHOOK_URL`): the same blocks, no upload.
"""

from __future__ import annotations

import logging
import os
import re
import time
import urllib.error
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.webhook import WebhookClient

from config.kinds import JobKind
from config.settings import Settings
from handlers.errors import DropreelError
from handlers.notify import JobEvent
from handlers.status import JobState, SlackPlace, utcnow

log = logging.getLogger(__name__)

KIND_NAMES = {
    JobKind.TALKING_HEAD: "Talking head (image + audio)",
    JobKind.DUBBING: "Dubbing (video + audio)",
    JobKind.TEXT_TO_VIDEO: "Text to video",
    JobKind.IMAGE_TO_VIDEO: "Image to video",
}
STAGE_ORDER = ("download", "validate", "speech", "load", "check", "render", "upload")
HEADER_LIMIT = 150
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
BUTTON_URL_LIMIT = 3000
METADATA_EVENT_TYPE = "dropreel_job"
HISTORY_PAGE_SIZE = 200  # conversations.history allows up to 999
HISTORY_PAGES = 5  # a resend looks at the newest 1,000 messages since the decision at most
CLOCK_SKEW = timedelta(minutes=10)  # between the worker's clock and Slack's
RETRY_LOOKBACK = timedelta(days=1)  # how far back a later attempt looks for its own message
RUNNING_ATTEMPTS = 1  # a claimed or progress edit is best effort: it must not hold up a render
RUNNING_MAX_WAIT = 5.0
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")

_ADVICE = {
    "not_authed": "no bot token was sent: set SLACK_BOT_TOKEN (or DROPREEL_SLACK_BOT_TOKEN)",
    "invalid_auth": "the bot token is not valid: copy the xoxb- token of the app again",
    "token_revoked": "the bot token was revoked: reinstall the Slack app and set the new token",
    "token_expired": "the bot token expired: reinstall the Slack app and set the new token",
    "account_inactive": "the bot's account is deactivated: reinstall the Slack app",
    "channel_not_found": "the channel does not exist or the bot cannot see it: check "
    "DROPREEL_SLACK_CHANNEL (a channel id like C0123 is safest)",
    "not_in_channel": "the bot is not in the channel: /invite the app to it",
    "is_archived": "the channel is archived: unarchive it or pick another channel",
    "missing_scope": "the app lacks a permission: add chat:write, files:write and "
    "channels:history (groups:history for a private channel), then reinstall",
    "restricted_action": "the workspace does not let the bot post there: ask a Slack admin",
    "invalid_blocks": "Slack refused the message layout (a dropreel bug): please report it",
    "msg_too_long": "the message was too long for Slack (a dropreel bug): please report it",
    "no_service": "the incoming-webhook URL is not valid any more: create a new one",
    "invalid_token": "the incoming-webhook URL is not valid any more: create a new one",
    "channel_is_archived": "the webhook's channel is archived: create a new incoming webhook",
    "action_prohibited": "a Slack admin blocked this incoming webhook",
}
_TRANSIENT = {
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
}


class SlackNotificationError(DropreelError):
    """Slack did not take the message; the text says why and what to change."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code  # Slack's error code (invalid_auth, channel_not_found, ...) if any


# ------------------------------------------------------------------------------- messages


def escape(text: str) -> str:
    """Slack mrkdwn escaping: user text (file names, errors) can never ping @channel or link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _seconds(value: float) -> str:
    if value >= 120:
        return f"{value / 60:.1f} min"
    return f"{value:.1f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"


def _expiry(seconds: int) -> str:
    days, hours = seconds / 86400, seconds / 3600
    if days >= 1 and seconds % 86400 == 0:
        return f"{days:.0f} day{'s' if days != 1 else ''}"
    if hours >= 1:
        return f"{hours:.0f} hour{'s' if round(hours) != 1 else ''}"
    return f"{seconds / 60:.0f} minutes"


def _folder_location(event: JobEvent) -> str:
    where = event.video_location or (event.inputs[0] if event.inputs else event.folder)
    return where.rpartition("/")[0] + "/" if "/" in where else where


def _stem(event: JobEvent) -> str:
    return event.status.job.rpartition("/")[2] or event.status.job


def build_message(
    event: JobEvent,
    link_expiry_seconds: int,
    public_base_url: str | None = None,
    now: datetime | None = None,
) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, Block Kit blocks) for one job event."""
    if event.step is not None:
        return _running_message(event)
    if event.state is JobState.DONE:
        return _done_message(event, link_expiry_seconds, public_base_url, now)
    return _failed_message(event)


def _running_message(event: JobEvent) -> tuple[str, list[dict[str, Any]]]:
    """A claimed or rendering job: the message that the outcome later replaces."""
    stem, status = _stem(event), event.status
    progress = status.progress or {}
    if event.step == "progress" and progress.get("total"):
        done, total = progress["done"], progress["total"]
        title = f"⏳ {stem} is rendering: {100 * done // total} %"
        where = f"*Progress*\nframe {done:,} of {total:,}"
        if progress.get("segments"):  # a parallel render (handlers/segments.py)
            where += f", {progress['segments_done']} of {progress['segments']} segments done"
    else:
        title, where = f"⏳ {stem} has started", f"*Progress*\n{status.stage or 'starting'}"
    fields = [*_fields(event), {"type": "mrkdwn", "text": where}]
    if status.attempt > 1:
        fields.append(
            {"type": "mrkdwn", "text": f"*Attempt*\n{status.attempt} of {status.max_attempts}"}
        )
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(title, HEADER_LIMIT)}},
        {"type": "section", "fields": [_field(f) for f in fields]},
    ]
    if event.estimate:
        blocks.append(_context(f"⏱ {escape(event.estimate)} (an estimate, not a bill)"))
    blocks.append(_context("This message is updated as the job goes on."))
    return escape(title), blocks


def _cost(event: JobEvent) -> dict[str, Any] | None:
    """GPU time and its estimated price, as status.json holds them."""
    status = event.status
    if status.gpu_seconds is None:
        return None
    text = f"💰 {_seconds(status.gpu_seconds)} on {escape(status.gpu or '?')}"
    if status.cost_usd is not None:
        text += f" · ~${status.cost_usd:.4f} (estimate)"
    return _context(text)


def _fields(event: JobEvent) -> list[dict[str, str]]:
    status = event.status
    if status.engine is None:  # it failed before it was routed (a bad prompt.json, ...)
        engine = "not chosen: the job stopped before"
    else:
        engine = f"{status.engine} · profile {status.settings.get('profile') or 'default'}"
    if status.speech:  # a script job: the speech engine spoke first
        engine = f"{status.speech['engine']} (speech), then {engine}"
    return [
        {"type": "mrkdwn", "text": f"*Job*\n{escape(_stem(event))}"},
        {"type": "mrkdwn", "text": f"*Folder*\n`{escape(_folder_location(event))}`"},
        {"type": "mrkdwn", "text": f"*Kind*\n{KIND_NAMES.get(status.kind, status.kind)}"},
        {"type": "mrkdwn", "text": f"*Engine*\n{escape(engine)}"},
    ]


def _done_message(
    event: JobEvent, expiry: int, public_base_url: str | None, now: datetime | None
) -> tuple[str, list[dict[str, Any]]]:
    stem, status, facts = _stem(event), event.status, event.status.video or {}
    tag = " (preview)" if status.preview else ""
    length = _seconds(facts.get("duration_seconds") or 0)
    text = escape(f"🎬 {stem} is ready{tag}: {length} video in {_folder_location(event)}")
    fields = _fields(event)
    video = f"{length}"
    if facts.get("width"):
        video += f" · {facts['width']}x{facts['height']} · {facts['fps']} fps"
    fields.append({"type": "mrkdwn", "text": f"*Video*\n{video}"})
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"🎬 {stem} is ready", HEADER_LIMIT)},
        },
        {"type": "section", "fields": [_field(f) for f in fields]},
    ]
    if status.preview:
        blocks.append(
            _context(
                "⚠️ *Preview render*: made on CPU by the preview engine (the still image over the "
                "audio, or a prompt card), not by a video model."
            )
        )
    if status.adjustments:
        blocks.append(_context("Adjusted: " + escape("; ".join(status.adjustments))))
    url = (
        public_base_url.rstrip("/") + "/" + event.video_key
        if public_base_url and event.video_key
        else event.video_url
    )
    button = url if url and len(url) <= BUTTON_URL_LIMIT else None
    if button:
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "▶ Open the MP4"},
                        "url": button,
                        "style": "primary",
                        "action_id": "open_video",
                    }
                ],
            }
        )
    where = f"`{escape(event.video_location or event.video_key or '')}`"
    if public_base_url:
        blocks.append(_context(f"Saved as {where}. The link does not expire."))
    elif url and not button:
        blocks.append(
            _context(
                f"Saved as {where}. Its link is too long for a Slack button: open the file from "
                "the bucket."
            )
        )
    elif url:
        until = (now or datetime.now(UTC)) + timedelta(seconds=expiry)
        blocks.append(
            _context(
                f"Saved as {where}. The link expires in {_expiry(expiry)} "
                f"({until:%Y-%m-%d %H:%M} UTC); the file stays in the bucket."
            )
        )
    else:
        blocks.append(_context(f"Saved as {where}."))
    timings = status.timings
    stages = [f"{name} {_seconds(timings[name])}" for name in STAGE_ORDER if name in timings]
    if stages:
        total = sum(timings[n] for n in STAGE_ORDER if n in timings)
        blocks.append(_context(f"⏱ {' · '.join(stages)} · *total {_seconds(total)}*"))
    cost = _cost(event)
    if cost:
        blocks.append(cost)
    if public_base_url and event.poster_key:
        blocks.append(
            {
                "type": "image",
                "image_url": public_base_url.rstrip("/") + "/" + event.poster_key,
                "alt_text": f"First frame of {stem}",
            }
        )
    return text, blocks


def _failed_message(event: JobEvent) -> tuple[str, list[dict[str, Any]]]:
    stem = _stem(event)
    error = event.status.error or "unknown error"
    failed = "cannot start" if event.state is JobState.INCOMPLETE else "failed"
    text = escape(f"❌ {stem} {failed}: {error}")
    fields = _fields(event)
    fields.append({"type": "mrkdwn", "text": f"*Attempts*\n{event.status.attempt}"})
    inputs = "\n".join(f"• `{escape(where)}`" for where in event.inputs) or "(none)"
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": _cut(f"❌ {stem} {failed}", HEADER_LIMIT)},
        },
        {
            "type": "section",
            "text": {
                "type": "mrkdwn",
                "text": _cut(f"*What went wrong*\n{escape(error)}", TEXT_LIMIT),
            },
        },
        {"type": "section", "fields": [_field(f) for f in fields]},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _cut(f"*Inputs*\n{inputs}", TEXT_LIMIT)},
        },
        _context(_next_step(event.status.fix_by or "user", event.status.job.rpartition("/")[2])),
    ]
    cost = _cost(event)
    if cost:
        blocks.append(cost)
    return _cut(text, TEXT_LIMIT), blocks


def _next_step(fix_by: str, job: str) -> str:
    """What to do next, by whose move the failure is (`JobStatus.fix_by`)."""
    if fix_by == "operator":
        return (
            "Your files are not the problem: the operator must fix the setup (see the error "
            f"above); ask them, then drop a file named `{job}.retry` in that folder to try again."
        )
    return (
        "Fix or replace the file in that folder: dropreel tries again by itself when an input "
        f"changes (or drop a file named `{job}.retry` to try the same files again)."
    )


def _field(field: dict[str, str]) -> dict[str, str]:
    return {**field, "text": _cut(field["text"], FIELD_LIMIT)}


def _context(mrkdwn: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(mrkdwn, TEXT_LIMIT)}]}


# ------------------------------------------------------------------------------- delivery


class _Retrier:
    """Waits out 429s (Retry-After), backs off on transient errors, gives up on the rest."""

    def __init__(self, attempts: int, max_wait: float, sleep: Callable[[float], None]) -> None:
        self.attempts = attempts
        self.max_wait = max_wait
        self.sleep = sleep

    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        waited = 0.0
        failures = 0
        while True:
            try:
                return fn()
            except SlackApiError as err:
                status = err.response.status_code
                code = str(err.response.get("error") or f"HTTP {status}")
                headers = err.response.headers or {}
                retry_after = _header(headers, "Retry-After")
                if status == 429 or code == "ratelimited":
                    delay = float(retry_after) if retry_after else 1.0
                    if waited + delay > self.max_wait:
                        raise SlackNotificationError(
                            f"Slack kept rate-limiting {what} ({waited:.0f} s waited already; "
                            f"the limit is {self.max_wait:.0f} s): try fewer jobs at once"
                        ) from None
                    log.info("Slack rate limit on %s: waiting %.0f s", what, delay)
                    self.sleep(delay)
                    waited += delay
                    continue
                if code in _ADVICE:
                    raise SlackNotificationError(
                        f"Slack refused {what}: {code}: {_ADVICE[code]}", code
                    ) from None
                if status < 500 and code not in _TRANSIENT:
                    raise SlackNotificationError(f"Slack refused {what}: {code}", code) from None
                reason = code
            except (SlackClientError, urllib.error.URLError, OSError, TimeoutError) as err:
                reason = type(err).__name__  # never str(err): it may quote a webhook URL
            failures += 1
            if failures >= self.attempts:
                raise SlackNotificationError(
                    f"Slack {what} failed {failures} times ({reason}); the video itself is fine"
                )
            delay = min(30.0, 2.0 ** (failures - 1))
            log.warning("Slack %s failed (%s), retry %d in %.0f s", what, reason, failures, delay)
            self.sleep(delay)


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers).items():
        if key.lower() == name.lower():
            return value[0] if isinstance(value, list) else value
    return None


class SlackNotifier:
    """A job's timeline in Slack with a bot token: chat.postMessage, then chat.update."""

    def __init__(
        self,
        client: WebClient,
        channel: str,
        link_expiry_seconds: int = 7 * 24 * 3600,
        attempts: int = 4,
        max_wait_seconds: float = 300.0,
        upload_poster: bool = True,
        public_base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.channel = channel
        self.link_expiry_seconds = link_expiry_seconds
        self.upload_poster = upload_poster
        self.public_base_url = public_base_url
        self.retrier = _Retrier(attempts, max_wait_seconds, sleep)
        self.quick = _Retrier(min(attempts, RUNNING_ATTEMPTS), RUNNING_MAX_WAIT, sleep)

    def check(self, look_up_channel: bool = True) -> None:
        """Raise SlackNotificationError if Slack refuses the token (auth.test) or does not know
        the channel (conversations.info; needs a channel id, and is skipped when the app lacks
        the channels:read scope, since posting does not need it)."""
        self.retrier.call("the bot token (auth.test)", self.client.auth_test)
        if not look_up_channel:
            return
        try:
            found = self.retrier.call(
                f"channel {self.channel} (conversations.info)",
                lambda: self.client.conversations_info(channel=self.channel),
            )
        except SlackNotificationError as err:
            if err.code == "missing_scope":
                log.info("cannot look up the Slack channel without channels:read; not checked")
                return
            raise
        if found["channel"].get("is_archived"):
            raise SlackNotificationError(
                f"Slack channel {self.channel}: {_ADVICE['is_archived']}", "is_archived"
            )

    def update(self, event: JobEvent) -> SlackPlace | None:
        """Post the running version's message (a reply in the job's thread when it has one),
        or edit it if it is out already; return where it is. Best effort: a short retry, so a
        slow Slack never holds up the render."""
        text, blocks = build_message(event, self.link_expiry_seconds, self.public_base_url)
        place = self._place(event)
        if place is not None and place.ts:
            self.quick.call("chat.update", lambda: self._edit(place, text, blocks, event))
            return place
        thread = place.thread if place else None
        if event.status.attempt > 1:  # an earlier attempt may have died before it noted its post
            since = datetime.now(UTC) - RETRY_LOOKBACK
            found = self._find(event, thread, since, states=False)
            if found is not None:
                place = SlackPlace(channel=self._channel(event), ts=found, thread_ts=thread)
                self.quick.call("chat.update", lambda: self._edit(place, text, blocks, event))
                return place
        posted = self.quick.call(
            "chat.postMessage", lambda: self._post(event, text, blocks, thread)
        )
        return SlackPlace(channel=posted["channel"], ts=posted["ts"], thread_ts=thread)

    def notify(self, event: JobEvent) -> None:
        """The outcome: in the version's message (edited in place) when it has one, else a new
        message (a reply in the job's thread when there is one); then the poster, in the
        thread."""
        text, blocks = build_message(event, self.link_expiry_seconds, self.public_base_url)
        place = self._place(event)
        if place is not None and place.ts:  # an edit: the same on a resend, never a repeat
            self.retrier.call("chat.update", lambda: self._edit(place, text, blocks, event))
            channel, thread = place.channel, place.thread
        else:
            thread = place.thread if place else None
            since = datetime.fromisoformat(event.resend_since or utcnow()) - CLOCK_SKEW
            if event.resend_since is not None and self._find(event, thread, since) is not None:
                log.info(
                    "%s: its message is in the channel already; not sending it again",
                    _stem(event),
                )
                return
            posted = self.retrier.call(
                "chat.postMessage", lambda: self._post(event, text, blocks, thread)
            )
            channel, thread = posted["channel"], thread or posted["ts"]
        if not (event.poster_jpeg and self.upload_poster and not self.public_base_url):
            return
        stem = _stem(event)
        try:
            self.retrier.call(
                "the poster upload",
                lambda: self.client.files_upload_v2(
                    channel=channel,
                    thread_ts=thread,
                    file=event.poster_jpeg,
                    filename=f"{stem}.jpg",
                    title=f"{stem}: first frame",
                    alt_txt=f"First frame of the video {stem}",
                ),
            )
        except SlackNotificationError as err:
            raise SlackNotificationError(f"the message was posted, but {err}") from None

    def _channel(self, event: JobEvent) -> str:
        return event.status.slack_channel or self.channel

    def _place(self, event: JobEvent) -> SlackPlace | None:
        """The job's thread and message, if they are in the channel this job posts to (a
        `#name` cannot be compared with the id Slack answers with, so it is trusted)."""
        place, channel = event.status.slack, self._channel(event)
        if place is None or (CHANNEL_ID.match(channel) and place.channel != channel):
            return None
        return place

    def _post(self, event: JobEvent, text: str, blocks: list, thread: str | None) -> Any:
        return self.client.chat_postMessage(
            channel=self._channel(event),
            text=text,
            blocks=blocks,
            thread_ts=thread,
            metadata=job_metadata(event),
            unfurl_links=False,
            unfurl_media=False,
        )

    def _edit(self, place: SlackPlace, text: str, blocks: list, event: JobEvent) -> Any:
        return self.client.chat_update(
            channel=place.channel,
            ts=place.ts,
            text=text,
            blocks=blocks,
            metadata=job_metadata(event),
        )

    def _find(
        self, event: JobEvent, thread: str | None, since: datetime, states: bool = True
    ) -> str | None:
        """The ts of this job version's message in the channel (or the job's thread), found by
        its metadata (with the same state, unless `states` is False), looking only at messages
        posted since `since`, at most HISTORY_PAGES pages. None if Slack cannot tell (no
        channels:history scope, a channel given by name): a duplicate beats a lost message."""
        wanted = job_metadata(event)["event_payload"]
        keys = [k for k in wanted if states or k != "state"]
        cursor = None
        method = "conversations.replies" if thread else "conversations.history"
        call = self.client.conversations_replies if thread else self.client.conversations_history
        where = {"ts": thread} if thread else {}
        try:
            for _ in range(HISTORY_PAGES):
                page = self.retrier.call(
                    method,
                    lambda cursor=cursor: call(
                        channel=self._channel(event),
                        oldest=f"{since.timestamp():.6f}",
                        limit=HISTORY_PAGE_SIZE,
                        include_all_metadata=True,
                        cursor=cursor,
                        **where,
                    ),
                )
                for message in page.get("messages") or []:
                    found = (message.get("metadata") or {}).get("event_payload") or {}
                    if all(found.get(k) == wanted[k] for k in keys):
                        return message["ts"]
                cursor = (page.get("response_metadata") or {}).get("next_cursor")
                if not cursor:
                    return None
        except SlackNotificationError as err:
            log.warning("%s: could not look for its message: %s", _stem(event), err)
        return None


def job_metadata(event: JobEvent) -> dict[str, Any]:
    """The message metadata that names the job version a message is about (Slack keeps it with
    the message; `conversations.history` returns it): what a resend looks for."""
    status = event.status
    return {
        "event_type": METADATA_EVENT_TYPE,
        "event_payload": {
            "job": status.job,
            "version": status.version,
            "state": status.state.value,
        },
    }


class SlackWebhookNotifier:
    """The same message through an incoming-webhook URL (no bot; the poster is not uploaded)."""

    def __init__(
        self,
        url: str,
        link_expiry_seconds: int = 7 * 24 * 3600,
        attempts: int = 4,
        max_wait_seconds: float = 300.0,
        public_base_url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = WebhookClient(url, retry_handlers=[])
        self.link_expiry_seconds = link_expiry_seconds
        self.public_base_url = public_base_url
        self.retrier = _Retrier(attempts, max_wait_seconds, sleep)

    def notify(self, event: JobEvent) -> None:
        text, blocks = build_message(event, self.link_expiry_seconds, self.public_base_url)

        def send() -> None:
            response = self.client.send(text=text, blocks=blocks, unfurl_links=False)
            if response.status_code != 200:
                raise SlackApiError(
                    "webhook refused",
                    _WebhookFailure(response.status_code, response.body, response.headers),
                )

        self.retrier.call("the incoming webhook", send)


class _WebhookFailure(dict):
    """Makes a webhook reply look like a Web API response for the retrier."""

    def __init__(self, status: int, body: str, headers: dict) -> None:
        super().__init__(ok=False, error=(body or "").strip() or f"HTTP {status}")
        self.status_code = status
        self.headers = headers


def bot_token(settings: Settings) -> str | None:
    """DROPREEL_SLACK_BOT_TOKEN, else the SLACK_BOT_TOKEN that Slack's own tools use."""
    if settings.slack_bot_token is not None:
        return settings.slack_bot_token.get_secret_value()
    return os.environ.get("SLACK_BOT_TOKEN") or None


def build_slack_notifier(
    settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> SlackNotifier | SlackWebhookNotifier:
    """The Slack notifier the settings ask for: bot token + channel, or an incoming webhook."""
    token = bot_token(settings)
    common = {
        "link_expiry_seconds": settings.link_expiry_seconds,
        "attempts": settings.slack_attempts,
        "max_wait_seconds": settings.slack_max_wait_seconds,
        "public_base_url": settings.public_base_url,
        "sleep": sleep,
    }
    if token:
        if not settings.slack_channel:
            raise ValueError(
                "DROPREEL_NOTIFIER=slack with a bot token needs DROPREEL_SLACK_CHANNEL "
                "(a channel id like C0123ABCD, or #name)"
            )
        client = WebClient(
            token=token,
            base_url=settings.slack_base_url or "https://slack.com/api/",
            timeout=30,
            retry_handlers=[],
        )
        return SlackNotifier(
            client, settings.slack_channel, upload_poster=settings.slack_upload_poster, **common
        )
    if settings.slack_webhook_url is not None:
        return SlackWebhookNotifier(settings.slack_webhook_url.get_secret_value(), **common)
    raise ValueError(
        "DROPREEL_NOTIFIER=slack needs SLACK_BOT_TOKEN and DROPREEL_SLACK_CHANNEL, or "
        "DROPREEL_SLACK_WEBHOOK_URL for an incoming webhook"
    )
