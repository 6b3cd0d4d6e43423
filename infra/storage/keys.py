"""Key hygiene shared by every backend: no key ever escapes the watch root, and no key is
longer than S3 allows (the local backend enforces the same limit, so a bucket and a folder
refuse the same jobs)."""

from __future__ import annotations

from handlers.errors import KeyTooLong, OutsideWatchRoot
from handlers.layout import MAX_KEY_BYTES


def clean_key(key: str, prefix: str = "") -> str:
    """Return `key` if it is a safe relative key that fits the store once `prefix` is put in
    front of it; else raise OutsideWatchRoot or KeyTooLong."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise OutsideWatchRoot(f"refusing key {key!r}: keys must be relative to the watch root")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise OutsideWatchRoot(
            f"refusing key {key!r}: empty, '.' or '..' path segments could escape the watch root"
        )
    size = len((prefix + key).encode("utf-8", "surrogatepass"))
    if size > MAX_KEY_BYTES:
        raise KeyTooLong(
            f"the key {key[:60]!r}... is {size:,} bytes long; the store allows at most "
            f"{MAX_KEY_BYTES:,}"
        )
    return key
