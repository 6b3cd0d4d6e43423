"""A fake Slack Web API on 127.0.0.1, strict where real Slack is strict.

slack-sdk talks to it through `WebClient(base_url=fake.base_url)` exactly as it talks to Slack:
the Bearer token is checked (auth.test answers for it), conversations.info looks up channel ids
only (a name is channel_not_found, as on Slack), chat.postMessage must be JSON (or form) with a
known channel and valid Block Kit (and a `thread_ts` of a message in that channel), chat.update
must name a channel id and the ts of a message this bot posted there, with valid content,
conversations.replies answers for an existing thread, and files_upload_v2's three steps must happen in order and agree with each
other (files.getUploadURLExternal -> POST of exactly `length` bytes to the URL it returned ->
files.completeUploadExternal naming uploaded file ids). It can answer 429 with Retry-After, or
fail with 5xx, when asked; and it records everything, so tests (and `dropreel demo`) can show
the message a person would read. It also serves an incoming-webhook URL.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

BOT_ID = "B0FAKE"  # the bot the token belongs to: it may edit only its own messages
METADATA_LIMIT = 8_000  # bytes of metadata JSON per message (an assumption; Slack's is larger)
BLOCK_TYPES = {"header", "section", "context", "actions", "divider", "image", "rich_text"}


@dataclass
class Received:
    """One HTTP request as the fake saw it."""

    method: str
    content_type: str
    authorization: str | None
    body: Any
    raw: bytes = field(repr=False)


@dataclass
class Upload:
    id: str
    filename: str
    length: int
    alt_txt: str | None = None
    data: bytes | None = field(default=None, repr=False)
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None


class FakeSlack:
    """Start with `with FakeSlack() as fake:`; then `fake.base_url`, `fake.messages`, ..."""

    def __init__(
        self, token: str = "xoxb-fake-dropreel-token", channels: dict[str, str] | None = None
    ) -> None:
        self.token = token
        self.channels = channels or {"C0DROPREEL": "dropreel"}
        self.archived: set[str] = set()  # channel ids: posting there is is_archived
        self.requests: list[Received] = []
        self.messages: list[dict[str, Any]] = []
        self.uploads: dict[str, Upload] = {}
        self.webhook_posts: list[dict[str, Any]] = []
        self._faults: dict[str, list[tuple[int, dict[str, str], dict[str, Any]]]] = {}
        self._ids = itertools.count(1)
        self._last_ts = 0.0  # message ts: Slack's form (seconds.micro), unique and increasing
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.webhook_path = "/services/T0FAKE/B0FAKE/fakewebhooksecret"

    # -- lifecycle
    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/api/"

    @property
    def webhook_url(self) -> str:
        return self.origin + self.webhook_path

    # -- faults
    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """The next `times` calls of `method` get HTTP 429 with Retry-After."""
        self._add_fault(
            method,
            times,
            429,
            {"Retry-After": str(retry_after)},
            {"ok": False, "error": "ratelimited"},
        )

    def fail(
        self, method: str, times: int = 1, status: int = 500, error: str = "internal_error"
    ) -> None:
        """The next `times` calls of `method` fail with this status and Slack error code."""
        self._add_fault(method, times, status, {}, {"ok": False, "error": error})

    def _add_fault(self, method: str, times: int, status: int, headers: dict, body: dict) -> None:
        with self._lock:
            self._faults.setdefault(method, []).extend([(status, headers, body)] * times)

    def _take_fault(self, method: str):
        with self._lock:
            queue = self._faults.get(method)
            return queue.pop(0) if queue else None

    # -- what a person sees
    def calls(self, method: str) -> list[Received]:
        return [r for r in self.requests if r.method == method]

    def render(self, message: dict[str, Any]) -> str:
        """A plain-text rendering of a posted message, the way a person reads it in Slack."""
        lines: list[str] = []
        for block in message.get("blocks") or []:
            kind = block["type"]
            if kind == "header":
                lines += [block["text"]["text"], ""]
            elif kind == "section":
                if "text" in block:
                    lines.append(_plain(block["text"]["text"]))
                for f in block.get("fields", []):
                    lines.append("  " + _plain(f["text"]).replace("\n", ": ", 1))
            elif kind == "context":
                lines.append("  " + " ".join(_plain(e.get("text", "")) for e in block["elements"]))
            elif kind == "actions":
                for e in block["elements"]:
                    lines.append(f"  [{e['text']['text']}] {e.get('url', '')}")
            elif kind == "image":
                lines.append(f"  [image: {block.get('alt_text')}] {block.get('image_url', '')}")
        if not lines:
            lines.append(message.get("text", ""))
        for upload in self.uploads.values():
            if message.get("ts") and upload.thread_ts == message.get("ts"):
                lines.append(f"  ↳ in thread: {upload.filename} ({upload.length:,} bytes JPEG)")
        return "\n".join(lines)

    # -- the API
    def _handle(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, dict, Any]:
        if path == self.webhook_path:
            return self._webhook(headers, raw)
        if path.startswith("/upload/"):
            ctype = headers.get("content-type", "")
            self.requests.append(Received("upload", ctype, headers.get("authorization"), None, raw))
            return self._upload(path.rpartition("/")[2], raw)
        if not path.startswith("/api/"):
            return 404, {}, {"ok": False, "error": "unknown_method"}
        method = path[len("/api/") :]
        ctype = headers.get("content-type", "")
        body = _parse(ctype, raw)
        auth = headers.get("authorization")
        self.requests.append(Received(method, ctype, auth, body, raw))
        fault = self._take_fault(method)
        if fault:
            return fault
        if body is None:
            return 200, {}, {"ok": False, "error": "invalid_form_data"}
        if auth is None and "token" not in body:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if auth != f"Bearer {self.token}" and body.get("token") != self.token:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        handler = {
            "auth.test": self._auth_test,
            "conversations.info": self._conversations_info,
            "chat.postMessage": self._post_message,
            "chat.update": self._update_message,
            "conversations.replies": self._replies,
            "conversations.history": self._history,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }.get(method)
        if handler is None:
            return 404, {}, {"ok": False, "error": "unknown_method"}
        return 200, {}, handler(ctype, body)

    def _channel_id(self, name: str | None) -> str | None:
        if not name:
            return None
        if name in self.channels:
            return name
        wanted = name.lstrip("#")
        return next((cid for cid, cname in self.channels.items() if cname == wanted), None)

    def _auth_test(self, ctype: str, body: dict) -> dict:
        return {"ok": True, "team": "fake", "user": "dropreel", "bot_id": BOT_ID}

    def _conversations_info(self, ctype: str, body: dict) -> dict:
        """As Slack: only a channel id is looked up (a #name is channel_not_found)."""
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "invalid_arguments"}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        return {
            "ok": True,
            "channel": {
                "id": channel,
                "name": self.channels[channel],
                "is_channel": True,
                "is_archived": channel in self.archived,
            },
        }

    def _content(self, body: dict) -> tuple[dict[str, Any] | None, dict | None]:
        """(text, blocks, metadata) of a post or an update, checked as Slack checks them, or
        (None, Slack's error reply)."""
        blocks = body.get("blocks")
        if isinstance(blocks, str):  # form-encoded: blocks arrive as a JSON string
            try:
                blocks = json.loads(blocks)
            except ValueError:
                return None, {"ok": False, "error": "invalid_blocks_format"}
        text = body.get("text")
        if not text and not blocks:
            return None, {"ok": False, "error": "no_text"}
        if text and len(text) > 40_000:
            return None, {"ok": False, "error": "msg_too_long"}
        if blocks is not None:
            errors = check_blocks(blocks)
            if errors:
                return None, {"ok": False, "error": "invalid_blocks", "errors": errors}
        metadata, error = _metadata(body.get("metadata"))
        if error:
            return None, {"ok": False, "error": error}
        return {"text": text, "blocks": blocks, "metadata": metadata}, None

    def _update_message(self, ctype: str, body: dict) -> dict:
        """chat.update as Slack answers it: a channel *id* and the ts of a message there that
        this bot posted (else channel_not_found / message_not_found / cant_update_message),
        with text or blocks checked as for a post. The message keeps its ts and thread."""
        channel, ts = body.get("channel"), body.get("ts")
        if not channel or not ts:
            return {"ok": False, "error": "invalid_arguments"}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.archived:
            return {"ok": False, "error": "is_archived"}
        message = next(
            (m for m in self.messages if m["channel"] == channel and m["ts"] == ts), None
        )
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        if message.get("bot_id") != BOT_ID:
            return {"ok": False, "error": "cant_update_message"}
        content, error = self._content(body)
        if error:
            return error
        with self._lock:
            message["edits"] = message.get("edits", 0) + 1
            message.update({k: v for k, v in content.items() if v is not None})
        return {"ok": True, "channel": channel, "ts": ts, "text": content["text"]}

    def post_as_someone_else(self, channel: str, text: str) -> str:
        """A message a person posted (not this bot): chat.update must refuse it."""
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            ts = f"{self._last_ts:.6f}"
            self.messages.append({"channel": channel, "ts": ts, "text": text, "blocks": None})
        return ts

    def _post_message(self, ctype: str, body: dict) -> dict:
        channel = self._channel_id(body.get("channel"))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.archived:
            return {"ok": False, "error": "is_archived"}
        content, error = self._content(body)
        if error:
            return error
        text, blocks, metadata = content["text"], content["blocks"], content["metadata"]
        thread_ts = body.get("thread_ts")
        if thread_ts and not any(
            m["ts"] == thread_ts and m["channel"] == channel for m in self.messages
        ):
            return {"ok": False, "error": "thread_not_found"}
        with self._lock:
            self._last_ts = max(time.time(), self._last_ts + 0.000001)
            ts = f"{self._last_ts:.6f}"
            message = {
                "channel": channel,
                "ts": ts,
                "text": text,
                "blocks": blocks,
                "bot_id": BOT_ID,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            if metadata:
                message["metadata"] = metadata
            self.messages.append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": text, "ts": ts}}

    def _history(self, ctype: str, body: dict) -> dict:
        """conversations.history: a channel *id* (a name is channel_not_found), newest first,
        `oldest`/`latest` exclusive unless `inclusive`, `limit` 1-999 (default 100) paged by
        `cursor`; message metadata only with `include_all_metadata`."""
        channel = body.get("channel")
        if not channel:
            return {"ok": False, "error": "invalid_arguments"}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        try:
            oldest = float(body.get("oldest") or 0)
            latest = float(body.get("latest") or time.time() + 1)
            limit = int(body.get("limit") or 100)
            start = int(body.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not 0 < limit <= 999:
            return {"ok": False, "error": "invalid_limit"}
        inclusive = _flag(body.get("inclusive"))
        with_metadata = _flag(body.get("include_all_metadata"))

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        with self._lock:
            found = [
                m
                for m in reversed(self.messages)
                if m["channel"] == channel and "thread_ts" not in m and within(float(m["ts"]))
            ]
        return {**_page(found, start, limit, with_metadata), "pin_count": 0}

    def _replies(self, ctype: str, body: dict) -> dict:
        """conversations.replies: the thread's parent then its replies, oldest first (a
        channel id and the parent's ts, else channel_not_found / thread_not_found); `oldest`
        exclusive, `limit`, `cursor`, metadata only with `include_all_metadata`."""
        channel, parent = body.get("channel"), body.get("ts")
        if not channel or not parent:
            return {"ok": False, "error": "invalid_arguments"}
        if channel not in self.channels:
            return {"ok": False, "error": "channel_not_found"}
        with self._lock:
            thread = [
                m
                for m in self.messages
                if m["channel"] == channel and parent in (m["ts"], m.get("thread_ts"))
            ]
        if not thread:
            return {"ok": False, "error": "thread_not_found"}
        try:
            oldest = float(body.get("oldest") or 0)
            limit = int(body.get("limit") or 100)
            start = int(body.get("cursor") or 0)
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        with_metadata = _flag(body.get("include_all_metadata"))
        found = [m for m in thread if float(m["ts"]) > oldest]
        return _page(found, start, limit, with_metadata)

    def _get_upload_url(self, ctype: str, body: dict) -> dict:
        if "form-urlencoded" not in ctype:
            return {"ok": False, "error": "invalid_arguments"}
        filename, length = body.get("filename"), body.get("length")
        if not filename or not str(length or "").isdigit() or int(length) <= 0:
            return {"ok": False, "error": "invalid_arguments"}
        with self._lock:
            file_id = f"F0FAKE{next(self._ids):06d}"
            self.uploads[file_id] = Upload(file_id, filename, int(length), body.get("alt_txt"))
        return {"ok": True, "upload_url": f"{self.origin}/upload/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, raw: bytes) -> tuple[int, dict, Any]:
        upload = self.uploads.get(file_id)
        if upload is None:
            return 404, {}, "not found"
        if len(raw) != upload.length:
            return 400, {}, f"length mismatch: declared {upload.length}, got {len(raw)}"
        upload.data = raw
        return 200, {}, f"OK - {len(raw)}"

    def _complete_upload(self, ctype: str, body: dict) -> dict:
        if "form-urlencoded" not in ctype:
            return {"ok": False, "error": "invalid_arguments"}
        try:
            files = json.loads(body.get("files", ""))
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel = body.get("channel_id")
        if channel and self._channel_id(channel) != channel:
            return {"ok": False, "error": "channel_not_found"}
        thread_ts = body.get("thread_ts")
        if thread_ts and not any(
            m["ts"] == thread_ts and m["channel"] == channel for m in self.messages
        ):
            return {"ok": False, "error": "invalid_thread_ts"}
        done = []
        for item in files:
            upload = self.uploads.get(item.get("id", ""))
            if upload is None:
                return {"ok": False, "error": "file_not_found"}
            if upload.data is None:
                return {"ok": False, "error": "file_upload_not_completed"}
            upload.title = item.get("title")
            upload.channel, upload.thread_ts = channel, thread_ts
            done.append({"id": upload.id, "name": upload.filename, "title": upload.title})
        return {"ok": True, "files": done}

    def _webhook(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict, Any]:
        body = _parse(headers.get("content-type", ""), raw)
        self.requests.append(
            Received("incoming-webhook", headers.get("content-type", ""), None, body, raw)
        )
        fault = self._take_fault("incoming-webhook")
        if fault:
            status, extra, payload = fault
            return status, extra, payload.get("error", "error")
        if not body or not (body.get("text") or body.get("blocks")):
            return 400, {}, "no_text"
        if body.get("blocks") is not None and check_blocks(body["blocks"]):
            return 400, {}, "invalid_blocks"
        self.webhook_posts.append(body)
        self.messages.append({"channel": "webhook", "ts": None, **body})
        return 200, {}, "ok"


def check_blocks(blocks: Any) -> list[str]:
    """The Block Kit limits Slack enforces on the blocks dropreel sends."""
    if not isinstance(blocks, list):
        return ["blocks must be an array"]
    errors = []
    if len(blocks) > 50:
        errors.append("more than 50 blocks")
    for i, block in enumerate(blocks):
        where = f"/blocks/{i}"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            errors.append(f"unknown block type {kind!r} [{where}]")
            continue
        if kind == "header":
            text = block.get("text", {})
            if text.get("type") != "plain_text" or not 0 < len(text.get("text", "")) <= 150:
                errors.append(f"header needs plain_text of 1-150 chars [{where}/text]")
        elif kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"section needs text or fields [{where}]")
            if "text" in block and not 0 < len(block["text"].get("text", "")) <= 3000:
                errors.append(f"section text must be 1-3000 chars [{where}/text]")
            fields = block.get("fields", [])
            if len(fields) > 10 or any(not 0 < len(f.get("text", "")) <= 2000 for f in fields):
                errors.append(f"at most 10 fields of 1-2000 chars [{where}/fields]")
        elif kind == "context":
            elements = block.get("elements", [])
            if not 0 < len(elements) <= 10:
                errors.append(f"context needs 1-10 elements [{where}/elements]")
        elif kind == "actions":
            for j, e in enumerate(block.get("elements", [])):
                if e.get("type") == "button":
                    label = e.get("text", {})
                    if (
                        label.get("type") != "plain_text"
                        or not 0 < len(label.get("text", "")) <= 75
                    ):
                        errors.append(f"button text must be plain_text 1-75 [{where}/elements/{j}]")
                    if "url" in e and not 0 < len(e["url"]) <= 3000:
                        errors.append(f"button url must be 1-3000 chars [{where}/elements/{j}]")
        elif kind == "image" and (
            not block.get("alt_text") or not (block.get("image_url") or block.get("slack_file"))
        ):
            errors.append(f"image needs alt_text and image_url or slack_file [{where}]")
    return errors


def _metadata(value: Any) -> tuple[dict[str, Any] | None, str | None]:
    """chat.postMessage's `metadata`: an object (a JSON string in a form) with a string
    `event_type` and an object `event_payload`. (metadata, None) or (None, Slack's error)."""
    if value is None:
        return None, None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, "invalid_metadata_format"
    if not isinstance(value, dict):
        return None, "invalid_metadata_format"
    if not isinstance(value.get("event_type"), str) or not value["event_type"]:
        return None, "invalid_metadata_schema"
    if not isinstance(value.get("event_payload"), dict):
        return None, "invalid_metadata_schema"
    if len(json.dumps(value)) > METADATA_LIMIT:
        return None, "metadata_too_large"
    return value, None


def _page(found: list[dict], start: int, limit: int, with_metadata: bool) -> dict[str, Any]:
    """One page of messages as Slack's history methods show them, with the next cursor."""
    messages = []
    for m in found[start : start + limit]:
        shown = {"type": "message", "user": "U0DROPREEL", "ts": m["ts"], "text": m["text"]}
        for key in ("thread_ts", "blocks"):
            if m.get(key):
                shown[key] = m[key]
        if with_metadata and m.get("metadata"):
            shown["metadata"] = m["metadata"]
        messages.append(shown)
    more = start + limit < len(found)
    return {
        "ok": True,
        "messages": messages,
        "has_more": more,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def _flag(value: Any) -> bool:
    return value in (True, 1) or str(value).lower() in ("true", "1")


def _parse(ctype: str, raw: bytes) -> dict[str, Any] | None:
    try:
        if "application/json" in ctype:
            body = json.loads(raw or b"{}")
            return body if isinstance(body, dict) else None
        if "form-urlencoded" in ctype or not ctype:
            return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    except ValueError:
        return None
    return None


def _plain(mrkdwn: str) -> str:
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("*", "")


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            path = urlparse(self.path).path
            query = urlparse(self.path).query
            if query and "form-urlencoded" not in headers.get("content-type", "") and not raw:
                raw, headers["content-type"] = query.encode(), "application/x-www-form-urlencoded"
            status, extra, payload = fake._handle(path, headers, raw)
            data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            ctype = "text/plain" if isinstance(payload, str) else "application/json; charset=utf-8"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            """Quiet: tests and the demo print what matters themselves."""

    return Handler
