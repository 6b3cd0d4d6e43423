"""S3 events delivered by an EventBridge rule to an API destination.

The body is the whole EventBridge event. `detail-type` "Object Created" carries the object;
other detail types (deletions, restores, tagging) are accepted and ignored. The object key is
URL-encoded like in every S3 notification and decoded with `unquote_plus`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import unquote_plus

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from triggers.events.model import ObjectEvent, lenient_size, lenient_time

OBJECT_CREATED = "Object Created"


class EbObject(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    key: str = Field(min_length=1)
    size: Annotated[int | None, BeforeValidator(lenient_size)] = None
    etag: str | None = None
    sequencer: str | None = None
    version_id: str | None = Field(None, alias="version-id")


class EbBucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)


class EbDetail(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: EbBucket
    object: EbObject
    reason: str | None = None


class EventBridgeEvent(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    source: str
    time: Annotated[datetime | None, BeforeValidator(lenient_time)] = None
    detail: EbDetail | None = None

    def to_events(self) -> list[ObjectEvent]:
        if self.source != "aws.s3" or self.detail is None:
            return []
        obj = self.detail.object
        return [
            ObjectEvent(
                source="eventbridge",
                bucket=self.detail.bucket.name,
                key=unquote_plus(obj.key),
                created=self.detail_type == OBJECT_CREATED,
                action=self.detail.reason or self.detail_type,
                size=obj.size,
                etag=obj.etag,
                event_time=self.time,
                sequencer=obj.sequencer,
            )
        ]
