"""Cloudflare R2 event notification messages, forwarded from the queue by `infra/r2_worker`.

R2 puts one message per change on a Cloudflare Queue:
`{"account", "action", "bucket", "object": {"key", "size", "eTag"}, "eventTime", "copySource"}`.
Actions that create objects: PutObject, CopyObject, CompleteMultipartUpload; DeleteObject and
LifecycleDeletion are ignored. R2 sends the key as it is (not URL-encoded), so it is kept as is.
The Worker posts each message body on its own, signed.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from triggers.events.model import ObjectEvent, ObjectKey, validated

CREATE_ACTIONS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload"})


class R2Message(BaseModel):
    action: str
    bucket: str = Field(min_length=1)
    object: ObjectKey


def object_events(payload: Any) -> list[ObjectEvent]:
    """The one object event an R2 message carries."""
    message = validated(R2Message, payload, "an R2 event notification")
    return [ObjectEvent(message.bucket, message.object.key, message.action in CREATE_ACTIONS)]
