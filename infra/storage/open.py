"""Turn a watch-root URL into a Storage backend."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from config.settings import Settings
from handlers.storage import Storage
from infra.storage.local import LocalStorage
from infra.storage.s3 import S3Storage, make_client


class BadWatchRoot(ValueError):
    """The watch root URL cannot be used."""


def open_storage(
    url: str, settings: Settings | None = None, client: object = None, create: bool = True
) -> Storage:
    """`file:///path` or `s3://bucket/prefix` (R2/MinIO: endpoint from settings or AWS env).
    A local folder is created unless `create` is false (then a missing one is BadWatchRoot)."""
    parsed = urlparse(url)
    if parsed.scheme == "file":
        path = (
            unquote(parsed.netloc + parsed.path) if parsed.netloc == "." else unquote(parsed.path)
        )
        if not path:
            raise BadWatchRoot(f"{url!r} names no folder: use file:///absolute/path")
        if not create and not Path(path).is_dir():
            raise BadWatchRoot(
                f"{path} is not a folder: check the watch root (nothing was created)"
            )
        return LocalStorage(path)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise BadWatchRoot(f"{url!r} names no bucket: use s3://bucket/prefix")
        if client is None:
            client = make_client(
                settings.endpoint_url if settings else None, settings.region if settings else None
            )
        return S3Storage(parsed.netloc, parsed.path.lstrip("/"), client=client)
    raise BadWatchRoot(f"{url!r}: the watch root must be file:///path or s3://bucket/prefix")
