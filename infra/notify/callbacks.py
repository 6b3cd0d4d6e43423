"""Signed JSON callbacks: a job's events POSTed to a URL that a person or a tool (n8n, Zapier, a
small server) chose, so that machines hear about jobs the way Slack does.

Every POST is signed like Stripe's webhooks, so a receiver can tell that it came from this
deployment and is not a replay: `X-Dropreel-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under DROPREEL_CALLBACK_SECRET>`. Each event has an id that stays the same however
often it is sent (`X-Dropreel-Event-Id`, also sent as `Idempotency-Key`); handlers/timeline.py
sends each id once and records it. A 5xx, a 408, a 429 or a network error is retried with
backoff (a 429's Retry-After is honoured); any other 4xx is the receiver saying no, and no
retry can change that. Errors name the URL's host only (a URL may carry a token in its path or
query), and the secret never leaves this module.

docs/CALLBACKS.md shows the body, how to verify a signature, and an n8n workflow.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from config.settings import Settings
from handlers.errors import DropreelError

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Dropreel-Signature"
EVENT_HEADER = "X-Dropreel-Event"
ID_HEADER = "X-Dropreel-Event-Id"
TOLERANCE_SECONDS = 300
"""How old a signed timestamp a receiver should accept (what `verify` checks)."""
RETRY_STATUSES = frozenset({408, 429})
MAX_BACKOFF = 30.0


class CallbackError(DropreelError):
    """A callback could not be delivered; the text says why and what to change."""


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, now: float | None = None, tolerance=TOLERANCE_SECONDS
) -> bool:
    """What a receiver does: the header's timestamp is recent and one of its v1 signatures is
    the HMAC of `<t>.<body>` (compared in constant time)."""
    parts = [p.partition("=") for p in header.split(",")]
    stamps = [v for k, _, v in parts if k.strip() == "t"]
    signatures = [v.strip() for k, _, v in parts if k.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, s) for s in signatures)


def _host(url: str) -> str:
    """The part of a URL safe to show: scheme and host, never a path, query or password."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


class CallbackSender:
    """POSTs signed callbacks with retries (the `CallbackSender` port of handlers/notify.py)."""

    def __init__(
        self,
        secret: str | None,
        attempts: int = 4,
        timeout: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._secret = secret
        self.attempts = attempts
        self.timeout = timeout
        self.sleep = sleep

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackSender:
        secret = settings.callback_secret
        return cls(
            secret.get_secret_value() if secret else None,
            settings.callback_attempts,
            settings.callback_timeout_seconds,
        )

    def __repr__(self) -> str:  # never the secret
        return f"CallbackSender(signed={self._secret is not None}, attempts={self.attempts})"

    def send(self, url: str, event_id: str, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        event = str(body.get("event", "?"))
        where = _host(url)
        reason = ""
        for attempt in range(1, self.attempts + 1):
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "dropreel-callbacks",
                EVENT_HEADER: event,
                ID_HEADER: event_id,
                "Idempotency-Key": event_id,
            }
            if self._secret:
                headers[SIGNATURE_HEADER] = sign(self._secret, int(time.time()), data)
            request = urllib.request.Request(url, data=data, headers=headers, method="POST")
            delay = min(MAX_BACKOFF, 2.0 ** (attempt - 1))
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                    reply.read(1024)
                return
            except urllib.error.HTTPError as err:
                if err.code < 500 and err.code not in RETRY_STATUSES:
                    raise CallbackError(
                        f"{where} refused the {event} callback with HTTP {err.code}: fix the "
                        "receiver or the callback URL (a 4xx is not retried)"
                    ) from None
                reason = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After", "") if err.headers else ""
                if retry_after.strip().isdigit():
                    delay = min(MAX_BACKOFF, float(retry_after))
            except (urllib.error.URLError, TimeoutError, OSError) as err:
                cause = getattr(err, "reason", None)
                reason = type(cause if isinstance(cause, Exception) else err).__name__
            if attempt < self.attempts:
                log.warning(
                    "callback %s to %s failed (%s), retry %d in %.0f s",
                    event,
                    where,
                    reason,
                    attempt,
                    delay,
                )
                self.sleep(delay)
        raise CallbackError(
            f"the {event} callback to {where} failed {self.attempts} times ({reason}): check "
            "that the receiver is up"
        )
