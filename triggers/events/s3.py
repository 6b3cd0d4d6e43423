"""The S3 event notification shape ("Records"), as AWS S3, MinIO and Ceph RGW send it.

AWS wraps it in SNS (`Message`) or sends it to queues; MinIO and Ceph POST it directly. Object
keys are URL-encoded (`unquote_plus` turns them back); `eventName` is `ObjectCreated:Put` on AWS
and Ceph and `s3:ObjectCreated:Put` on MinIO. A bucket's first notification set-up sends an
`s3:TestEvent`, which carries no object and is ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from triggers.events.model import BucketObject, ObjectEvent, validated


class S3Record(BaseModel):
    event_name: str = Field(alias="eventName")
    s3: BucketObject

    def event(self) -> ObjectEvent:
        return self.s3.event(self.event_name.removeprefix("s3:").startswith("ObjectCreated"))


class S3EventNotification(BaseModel):
    """`{"Records": [...]}`; extra top-level fields (MinIO's EventName, Key) are ignored."""

    Records: list[S3Record]


def is_test_event(payload: Any) -> bool:
    """S3 sends `{"Service": "Amazon S3", "Event": "s3:TestEvent", ...}` when notifications are set up."""
    return isinstance(payload, dict) and payload.get("Event") == "s3:TestEvent"


def object_events(payload: Any) -> list[ObjectEvent]:
    """The object events in a decoded S3 notification; [] for a test event."""
    if is_test_event(payload):
        return []
    notification = validated(S3EventNotification, payload, "an S3 event notification")
    return [record.event() for record in notification.Records]
