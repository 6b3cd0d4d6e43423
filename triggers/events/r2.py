"""Cloudflare R2 event notification messages, forwarded from the queue by `infra/r2_worker`.

R2 puts one message per change on a Cloudflare Queue:
`{"account", "action", "bucket", "object": {"key", "size", "eTag"}, "eventTime", "copySource"}`.
Actions that create objects: PutObject, CopyObject, CompleteMultipartUpload; DeleteObject and
LifecycleDeletion are ignored. R2 sends the key as it is (not URL-encoded), so it is kept as is.
The Worker posts each message body on its own, signed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from triggers.events.model import ObjectEvent, lenient_size, lenient_time

CREATE_ACTIONS = frozenset({"PutObject", "CopyObject", "CompleteMultipartUpload"})


class R2Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    key: str = Field(min_length=1)
    size: Annotated[int | None, BeforeValidator(lenient_size)] = None
    etag: str | None = Field(None, alias="eTag")


class R2Message(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    account: str | None = None
    action: str
    bucket: str = Field(min_length=1)
    object: R2Object
    event_time: Annotated[datetime | None, BeforeValidator(lenient_time)] = Field(
        None, alias="eventTime"
    )

    def to_event(self) -> ObjectEvent:
        return ObjectEvent(
            source="r2",
            bucket=self.bucket,
            key=self.object.key,
            created=self.action in CREATE_ACTIONS,
            action=self.action,
            size=self.object.size,
            etag=self.object.etag,
            event_time=self.event_time,
        )


def parse_r2_payload(payload: Any) -> list[ObjectEvent]:
    return [R2Message.model_validate(payload).to_event()]
