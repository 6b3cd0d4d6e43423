"""A fault-injecting HTTP proxy for tests: it forwards every request to moto's server and then,
for a chosen fraction, loses the reply *after* moto applied the request (it closes the
connection without answering, or answers 500 in place of moto's reply). That is the lost reply
users meet on real networks, and the one that makes a client's retry meet its own write.
"""

from __future__ import annotations

import http.client
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host"}


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that died (SIGKILLed workers do) is not news; anything else is."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """`with FaultProxy(moto_endpoint) as proxy:` then point boto3 at `proxy.url`.

    `every`: lose the reply of every n-th request of each kind (GET, PUT, DELETE, ...), so each
    kind loses the same fraction whatever the order threads send in; 0 loses none.
    `lose_next(n)`: lose the next n replies whatever the rate (for targeted tests).
    Counts: `requests[method]`, `lost[method]` (every lost reply was applied by moto first).
    `observe(method, path, body, status)`: called with each request after moto answered it.
    """

    def __init__(self, upstream: str, every: int = 0, observe=None) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname, parsed.port)
        self.every = every
        self.observe = observe
        self.requests: Counter = Counter()
        self.lost: Counter = Counter()
        self._forced = 0
        self._lock = threading.Lock()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def lose_next(self, count: int) -> None:
        with self._lock:
            self._forced += count

    def _decide(self, method: str) -> str | None:
        """None to relay moto's reply, else how to lose it: 'close' or '500'."""
        with self._lock:
            self.requests[method] += 1
            if self._forced:
                self._forced -= 1
            elif not self.every or self.requests[method] % self.every != self.every // 2:
                return None
            self.lost[method] += 1
            return ("close", "500")[sum(self.lost.values()) % 2]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                """Quiet."""

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
                upstream = http.client.HTTPConnection(*proxy.upstream, timeout=30)
                try:
                    headers["Host"] = f"{proxy.upstream[0]}:{proxy.upstream[1]}"
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    reply = upstream.getresponse()
                    data = reply.read()  # moto has applied the request by now
                    status, reply_headers = reply.status, reply.getheaders()
                finally:
                    upstream.close()
                if proxy.observe is not None:
                    proxy.observe(self.command, self.path, body, status)
                fault = proxy._decide(self.command)
                if fault == "close":
                    self.close_connection = True
                    return
                if fault == "500":
                    status, reply_headers, data = 500, [], b"lost reply"
                self.send_response(status)
                for name, value in reply_headers:
                    if name.lower() not in HOP_HEADERS | {"content-length", "date", "server"}:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        return Handler
