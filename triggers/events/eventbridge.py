"""S3 events delivered by an EventBridge rule to an API destination.

The body is the whole EventBridge event. `detail-type` "Object Created" carries the object;
other detail types (deletions, restores, tagging) are accepted and ignored. The object key is
URL-encoded like in every S3 notification and decoded with `unquote_plus`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from triggers.events.model import BucketObject, ObjectEvent, validated

OBJECT_CREATED = "Object Created"


class EventBridgeEvent(BaseModel):
    detail_type: str = Field(alias="detail-type")
    source: str
    detail: BucketObject | None = None


def object_events(payload: Any) -> list[ObjectEvent]:
    """The object event in an EventBridge event; [] for events that are not from S3."""
    event = validated(EventBridgeEvent, payload, "an EventBridge S3 event")
    if event.source != "aws.s3" or event.detail is None:
        return []
    return [event.detail.event(event.detail_type == OBJECT_CREATED)]
