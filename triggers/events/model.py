"""The one event shape every source turns its payload into, and the parts the S3 family shares.

Past the edge nothing sees a provider's dict: the intake only needs to know which object in which
bucket changed, and whether it was created. Keys are decoded here, as each sender encodes them:
AWS S3 (direct, via SNS or EventBridge) and MinIO send form-encoded keys (`red+flower.jpg` for
`red flower.jpg`, `%2B` for `+`); Ceph RGW and R2 send the key as it is, and decoding those would
turn a real `+` into a space and `%41` into `A`. The rest of dropreel sees the real key. A payload
of the wrong shape is a `MalformedEvent` (400) that names the first field wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote_plus

from pydantic import BaseModel, Field, ValidationError

from triggers.exceptions import MalformedEvent

Model = TypeVar("Model", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class ObjectEvent:
    """One object-level change in a bucket, whatever sent it."""

    bucket: str
    key: str
    created: bool


def validated(model: type[Model], payload: Any, what: str) -> Model:
    """`payload` as `model`; a MalformedEvent saying where it is not `what` otherwise."""
    try:
        return model.model_validate(payload)
    except ValidationError as err:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())) or "body"
        raise MalformedEvent(f"not {what}: {where}: {first.get('msg', 'invalid')}") from err


class ObjectKey(BaseModel):
    key: str = Field(min_length=1)


class BucketName(BaseModel):
    name: str = Field(min_length=1)


class BucketObject(BaseModel):
    """`{"bucket": {"name"}, "object": {"key"}}`: how S3 records and EventBridge name an object."""

    bucket: BucketName
    object: ObjectKey

    def event(self, created: bool, *, form_encoded: bool = True) -> ObjectEvent:
        """The event; `form_encoded` says whether the sender form-encoded the key (AWS, MinIO)."""
        key = unquote_plus(self.object.key) if form_encoded else self.object.key
        return ObjectEvent(self.bucket.name, key, created)
