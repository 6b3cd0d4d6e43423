"""A callback receiver on 127.0.0.1 that checks what docs/CALLBACKS.md tells receivers to check.

It verifies each request's signature on its own (HMAC-SHA256 of "<t>.<raw body>" under the shared
secret, the timestamp within 5 minutes, constant-time comparison), as a receiver written from the
documentation would, and records what it got. It can be told to answer with given statuses
first (503, 429 with Retry-After, 400...) to exercise the sender's retries.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = field(repr=False)
    verified: bool
    answered: int


class CallbackReceiver:
    def __init__(self, secret: str | None) -> None:
        self.secret = secret
        self.deliveries: list[Delivery] = []
        self.answers: list[tuple[int, dict[str, str]]] = []  # served first, in order
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/hooks/dropreel?token=receiver-path-token"

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if d.answered == 200]

    def verify(self, header: str, raw: bytes) -> bool:
        if not self.secret:
            return False
        fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
        try:
            stamp = int(fields["t"])
        except (KeyError, ValueError):
            return False
        if abs(time.time() - stamp) > 300:
            return False
        expected = hmac.new(
            self.secret.encode(), str(stamp).encode() + b"." + raw, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(expected, fields.get("v1", ""))

    def _receive(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, str]]:
        verified = self.verify(headers.get("x-dropreel-signature", ""), raw)
        with self._lock:
            status, extra = self.answers.pop(0) if self.answers else (200, {})
            if status == 200 and self.secret and not verified:
                status = 401
            self.deliveries.append(Delivery(headers, json.loads(raw), raw, verified, status))
        return status, extra


def _handler(receiver: CallbackReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra = receiver._receive(headers, raw)
            self.send_response(status)
            for key, value in extra.items():
                self.send_header(key, value)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            """Quiet."""

    return Handler
