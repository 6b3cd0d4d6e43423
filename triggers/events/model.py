"""The one event shape every route turns its payload into.

Past the edge nothing sees a provider's dict: the intake only needs to know which object in which
bucket changed, and whether it was created. Keys are decoded here (S3-family payloads carry
URL-encoded keys, `red+flower.jpg` for `red flower.jpg`), so the rest of dropreel sees the real
key.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

Source = Literal["sns", "eventbridge", "s3", "r2"]


class ObjectEvent(BaseModel):
    """One object-level change in a bucket, whatever sent it."""

    model_config = ConfigDict(frozen=True)

    source: Source
    bucket: str
    key: str
    created: bool
    action: str
    size: int | None = None
    etag: str | None = None
    event_time: datetime | None = None
    sequencer: str | None = None


def lenient_time(value: object) -> datetime | None:
    """Parse an ISO-8601 event time; None when absent or unreadable (it is informative only)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and value.strip():
        text = value.strip().replace("Z", "+00:00")
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def lenient_size(value: object) -> int | None:
    """Sizes come as numbers (AWS, MinIO, R2) or strings (Ceph); None when absent or unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None
