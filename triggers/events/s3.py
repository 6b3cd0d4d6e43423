"""The S3 event notification shape ("Records"), as AWS S3, MinIO and Ceph RGW send it.

AWS wraps it in SNS (`Message`) or sends it to queues; MinIO and Ceph POST it directly to the same
route, so each record says who sent it. AWS (`eventSource` "aws:s3") and MinIO ("minio:s3")
form-encode the object key (`unquote_plus` turns it back). Ceph RGW sends the key raw; its
records say `eventSource` "ceph:s3" and, in every RGW release with push endpoints, carry
`opaqueData` and `s3.bucket.id`, which neither AWS nor MinIO sends, so an RGW record is known by
any of the three. `eventName` is `ObjectCreated:Put` on AWS and Ceph and `s3:ObjectCreated:Put` on
MinIO (and some Ceph releases). A bucket's first notification set-up sends an `s3:TestEvent`,
which carries no object and is ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from triggers.events.model import BucketName, BucketObject, ObjectEvent, validated

CEPH_SOURCE = "ceph:s3"


class RecordBucket(BucketName):
    id: str | None = None  # RGW's bucket instance id; AWS and MinIO send none


class RecordObject(BucketObject):
    bucket: RecordBucket


class S3Record(BaseModel):
    event_name: str = Field(alias="eventName")
    event_source: str = Field("", alias="eventSource")
    opaque_data: str | None = Field(None, alias="opaqueData")
    s3: RecordObject

    @property
    def from_ceph(self) -> bool:
        """Ceph RGW sent it: RGW keys are raw, not form-encoded."""
        return (
            self.event_source == CEPH_SOURCE
            or self.opaque_data is not None
            or self.s3.bucket.id is not None
        )

    def event(self) -> ObjectEvent:
        created = self.event_name.removeprefix("s3:").startswith("ObjectCreated")
        return self.s3.event(created, form_encoded=not self.from_ceph)


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
