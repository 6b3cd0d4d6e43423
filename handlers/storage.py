"""The storage port: the few calls the job lifecycle needs, whatever the backend.

Backends live in `infra/storage` (S3 and local folder). Keys are always relative to the watch
root, '/'-separated; a backend refuses any key that would escape it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object. `etag` identifies the content version; `last_modified` is UTC."""

    key: str
    size: int
    etag: str
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class Listing:
    """A complete listing plus the storage server's clock at the time (leases use it)."""

    objects: list[ObjectInfo]
    server_time: datetime
    pages: int
    # this process's time.monotonic() when the listing's first request was sent: the listing
    # shows the store as it was at some moment after it (a claim uses it: handlers/claims.py)
    started: float | None = None


class Storage(Protocol):
    """What the lifecycle needs from a bucket or a folder."""

    url: str

    def list(self, prefix: str = "") -> Listing: ...

    def list_folder(self, folder: str) -> Listing:
        """The objects directly in `folder` (`''` or ending in '/') plus everything under its
        `.dropreel/` folder: all that a decision about the folder's jobs reads, and never its
        subfolders, so the cost is the folder's own size whatever lies below it."""

    def check_key(self, key: str) -> None:
        """Raise KeyTooLong (or OutsideWatchRoot) for a key this store cannot hold; no request.
        Every other call checks its key the same way."""

    def iter_pages(self, prefix: str = "") -> Iterator[Listing]:
        """The listing of `prefix` one page at a time (each a Listing of one page, with the
        server's clock when it was served), a folder's whole subtree together: S3's byte order,
        or the local backend's depth-first walk."""

    def get(self, key: str) -> bytes: ...

    def download(self, key: str, dest: Path) -> None: ...

    def put(self, key: str, data: bytes | Path, content_type: str | None = None) -> str: ...

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str: ...

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str: ...

    def delete(self, key: str) -> None: ...

    def presigned_url(self, key: str, expires_seconds: int) -> str | None: ...

    def describe(self, key: str) -> str: ...
