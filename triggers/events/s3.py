"""The S3 event notification shape ("Records"), as AWS S3, MinIO and Ceph RGW send it.

AWS wraps it in SNS (`Message`) or sends it to queues; MinIO and Ceph POST it directly. Object
keys are URL-encoded (`unquote_plus` turns them back); `eventName` is `ObjectCreated:Put` on AWS
and Ceph and `s3:ObjectCreated:Put` on MinIO. A bucket's first notification set-up sends an
`s3:TestEvent`, which carries no object and is ignored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from triggers.events.model import ObjectEvent, Source, lenient_size, lenient_time


class S3Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    key: str = Field(min_length=1)
    size: Annotated[int | None, BeforeValidator(lenient_size)] = None
    etag: str | None = Field(None, alias="eTag")
    sequencer: str | None = None
    version_id: str | None = Field(None, alias="versionId")


class S3Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1)


class S3Entity(BaseModel):
    model_config = ConfigDict(extra="ignore")

    bucket: S3Bucket
    object: S3Object


class S3Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    event_name: str = Field(alias="eventName")
    event_time: Annotated[datetime | None, BeforeValidator(lenient_time)] = Field(
        None, alias="eventTime"
    )
    event_source: str | None = Field(None, alias="eventSource")
    s3: S3Entity

    @property
    def action(self) -> str:
        return self.event_name.removeprefix("s3:")

    def to_event(self, source: Source) -> ObjectEvent:
        obj = self.s3.object
        return ObjectEvent(
            source=source,
            bucket=self.s3.bucket.name,
            key=unquote_plus(obj.key),
            created=self.action.startswith("ObjectCreated"),
            action=self.action,
            size=obj.size,
            etag=obj.etag.strip('"') if obj.etag else None,
            event_time=self.event_time,
            sequencer=obj.sequencer,
        )


class S3EventNotification(BaseModel):
    """`{"Records": [...]}`; extra top-level fields (MinIO's EventName, Key) are ignored."""

    model_config = ConfigDict(extra="ignore")

    Records: list[S3Record]

    def to_events(self, source: Source) -> list[ObjectEvent]:
        return [record.to_event(source) for record in self.Records]


def is_test_event(payload: Any) -> bool:
    """S3 sends `{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}` when notifications are set up."""
    return isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent"


def parse_s3_payload(payload: Any, source: Source) -> list[ObjectEvent]:
    """Object events from a decoded S3 notification; [] for a test event."""
    if is_test_event(payload):
        return []
    return S3EventNotification.model_validate(payload).to_events(source)
