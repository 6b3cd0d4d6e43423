"""Key hygiene shared by every backend: no key ever escapes the watch root."""

from __future__ import annotations

from handlers.errors import OutsideWatchRoot


def clean_key(key: str) -> str:
    """Return `key` if it is a safe relative key, else raise OutsideWatchRoot."""
    if not key or key.startswith("/") or "\\" in key or "\x00" in key:
        raise OutsideWatchRoot(f"refusing key {key!r}: keys must be relative to the watch root")
    parts = key.split("/")
    if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in ("", ".", ".."):
        raise OutsideWatchRoot(
            f"refusing key {key!r}: empty, '.' or '..' path segments could escape the watch root"
        )
    return key
