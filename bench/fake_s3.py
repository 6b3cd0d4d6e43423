"""A small S3 server for scale benchmarks: a bucket's history made up on the fly, in constant
time per page, plus real objects kept in memory.

`bench/poller.py --keys 1000000` needs a bucket with a million keys; moto takes hours to fill
one and gigabytes to hold it. Here the history is a function: key number n of `jobs * len(NAMES)`
(finished prompt.json jobs as a real run leaves them, in S3's byte order) is computed, never
stored, and a ListObjectsV2 page is found by bisection. Everything dropreel writes (the index,
leases, markers) is stored for real, with If-None-Match / If-Match as S3 does them, and merged
into listings. Only what dropreel's S3 backend sends is served: ListObjectsV2 (prefix,
delimiter, continuation token), GetObject, PutObject, DeleteObject. Correctness is moto's job
(the tests); this server only has to be fast and speak the same XML.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
import threading
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse
from xml.sax.saxutils import escape

OLD = "2026-01-01T00:00:00.000Z"
PAGE = 1000
TEAMS = 40
# a finished prompt.json job's keys, in S3's byte order ({v}: its version, {e}: the MP4's ETag);
# bench/poller.py checks them against the keys a real run leaves
NAMES = (".dropreel/prompt/{v}.done", ".dropreel/prompt/made-{e}.json",
         ".dropreel/prompt/poster.jpg", ".dropreel/prompt/status.json",
         "prompt.json", "prompt.mp4")  # fmt: skip


def job_body(job: int) -> bytes:
    """A job's prompt.json (every other key of the history holds `{}`)."""
    return json.dumps({"prompt": f"scene {job}"}).encode()


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


MP4_ETAG = md5(b"{}")


class History:
    """`jobs` finished jobs under `prefix`, spread over TEAMS folders, as sorted virtual keys."""

    def __init__(self, prefix: str, jobs: int) -> None:
        self.prefix = prefix
        self.jobs = jobs
        self.per_team = max(1, -(-jobs // TEAMS))

    def __len__(self) -> int:
        return self.jobs * len(NAMES)

    def folder(self, job: int) -> str:
        return f"{self.prefix}team{job // self.per_team:02d}/job{job:07d}/"

    @functools.lru_cache(maxsize=4096)  # noqa: B019 (one History per server)
    def version(self, job: int) -> str:
        key = self.folder(job)[len(self.prefix) :] + "prompt.json"  # as the watch root sees it
        etag = md5(job_body(job))
        return hashlib.sha256(f"{key}\0{etag}\n".encode()).hexdigest()[:16]

    def key(self, n: int) -> str:
        job, slot = divmod(n, len(NAMES))
        name = NAMES[slot]
        if "{" in name:
            name = name.format(v=self.version(job), e=MP4_ETAG)
        return self.folder(job) + name

    def body(self, n: int) -> bytes:
        job, slot = divmod(n, len(NAMES))
        return job_body(job) if NAMES[slot] == "prompt.json" else b"{}"

    def first_at_or_after(self, key: str) -> int:
        return bisect.bisect_left(range(len(self)), key, key=self.key)

    def find(self, key: str) -> int | None:
        n = self.first_at_or_after(key)
        return n if n < len(self) and self.key(n) == key else None


class Store:
    def __init__(self, history: History) -> None:
        self.history = history
        self.objects: dict[str, tuple[bytes, str, str]] = {}  # key -> body, etag, modified
        self.sorted: list[str] = []
        self.lock = threading.Lock()

    def put(self, key: str, body: bytes, if_none_match: bool, if_match: str | None) -> int:
        with self.lock:
            exists = key in self.objects or self.history.find(key) is not None
            if if_none_match and exists:
                return 412
            if if_match is not None:
                current = self.objects.get(key)
                if current is None or current[1] != if_match.strip('"'):
                    return 412
            if key not in self.objects:
                bisect.insort(self.sorted, key)
            modified = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            self.objects[key] = (body, md5(body), modified)
            return 200

    def get(self, key: str) -> tuple[bytes, str] | None:
        with self.lock:
            if key in self.objects:
                body, etag, _ = self.objects[key]
                return body, etag
        n = self.history.find(key)
        if n is None:
            return None
        body = self.history.body(n)
        return body, md5(body)

    def delete(self, key: str) -> None:
        with self.lock:
            if self.objects.pop(key, None) is not None:
                self.sorted.remove(key)

    def entry(self, key: str) -> tuple[str, str, int]:
        """(etag, modified, size) of a stored object (empty if deleted meanwhile)."""
        body, etag, modified = self.objects.get(key, (b"", md5(b""), OLD))
        return etag, modified, len(body)

    def page(self, prefix: str, delimiter: str, after: str) -> tuple[list, list, str | None]:
        """Up to PAGE keys and common prefixes after `after`, merged from both sources."""
        history = self.history
        with self.lock:
            real = list(self.sorted)
        contents: list[str] = []
        prefixes: list[str] = []
        start = max(after, prefix)
        if delimiter and after.endswith(delimiter) and after > prefix:  # a common prefix: past it
            start = after[:-1] + chr(ord(delimiter) + 1)
        n = history.first_at_or_after(start)
        i = bisect.bisect_left(real, start)
        if n < len(history) and history.key(n) == after:
            n += 1
        if i < len(real) and real[i] == after:
            i += 1
        while len(contents) + len(prefixes) < PAGE:
            hkey = history.key(n) if n < len(history) else None
            rkey = real[i] if i < len(real) else None
            key = min(k for k in (hkey, rkey, "\U0010ffff") if k is not None)
            if key == "\U0010ffff" or not key.startswith(prefix):
                return contents, prefixes, None
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut != -1:
                common = key[: cut + 1]
                prefixes.append(common)
                beyond = common[:-1] + chr(ord(delimiter) + 1)  # first key past the prefix
                n = history.first_at_or_after(beyond)
                i = bisect.bisect_left(real, beyond)
                continue
            if key == rkey:
                contents.append((key, *self.entry(key)))
                i += 1
            if key == hkey:
                if key != rkey:
                    body = history.body(n)
                    contents.append((key, md5(body), OLD, len(body)))
                n += 1
        last = max(contents[-1][0] if contents else "", prefixes[-1] if prefixes else "")
        return contents, prefixes, last


def handler_for(store: Store, bucket: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def _key(self) -> tuple[str, dict[str, list[str]]]:
            url = urlparse(self.path)
            path = unquote(url.path).lstrip("/")
            _, _, key = path.partition("/")
            return key, parse_qs(url.query, keep_blank_values=True)

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            self.send_header("Date", formatdate(usegmt=True))
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, code: str) -> None:
            body = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
            self._send(status, body, {"Content-Type": "application/xml"})

        def do_GET(self) -> None:
            key, query = self._key()
            if not key:
                self._list(query)
                return
            found = store.get(key)
            if found is None:
                self._error(404, "NoSuchKey")
                return
            body, etag = found
            self._send(200, body, {"ETag": f'"{etag}"', "Last-Modified": formatdate(usegmt=True)})

        def do_PUT(self) -> None:
            key, _ = self._key()
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            status = store.put(
                key,
                body,
                self.headers.get("If-None-Match") == "*",
                self.headers.get("If-Match"),
            )
            if status == 412:
                self._error(412, "PreconditionFailed")
                return
            self._send(200, b"", {"ETag": f'"{md5(body)}"'})

        def do_DELETE(self) -> None:
            key, _ = self._key()
            store.delete(key)
            self._send(204)

        def _list(self, query: dict[str, list[str]]) -> None:
            prefix = query.get("prefix", [""])[0]
            delimiter = query.get("delimiter", [""])[0]
            after = query.get("continuation-token", [""])[0]
            contents, prefixes, last = store.page(prefix, delimiter, after)
            parts = [
                '<?xml version="1.0" encoding="UTF-8"?>',
                '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">',
                f"<Name>{bucket}</Name><Prefix>{escape(prefix)}</Prefix>",
                f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount><MaxKeys>{PAGE}</MaxKeys>",
                f"<IsTruncated>{'true' if last else 'false'}</IsTruncated>",
            ]
            if delimiter:
                parts.append(f"<Delimiter>{escape(delimiter)}</Delimiter>")
            for key, etag, modified, size in contents:
                parts.append(
                    f"<Contents><Key>{escape(key)}</Key><LastModified>{modified}</LastModified>"
                    f"<ETag>&quot;{etag}&quot;</ETag><Size>{size}</Size>"
                    "<StorageClass>STANDARD</StorageClass></Contents>"
                )
            for common in prefixes:
                parts.append(f"<CommonPrefixes><Prefix>{escape(common)}</Prefix></CommonPrefixes>")
            if last:
                parts.append(f"<NextContinuationToken>{escape(last)}</NextContinuationToken>")
            parts.append("</ListBucketResult>")
            self._send(200, "".join(parts).encode(), {"Content-Type": "application/xml"})

    return Handler


def serve(bucket: str, prefix: str, jobs: int, ready) -> None:
    """Run the server (in a process of its own); sends its port through `ready`."""
    store = Store(History(prefix, jobs))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(store, bucket))
    server.daemon_threads = True
    ready.send(server.server_address[1])
    server.serve_forever()
