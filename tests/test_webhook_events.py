"""Each recorded payload parses at the edge into the expected ObjectEvent (keys decoded)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from tests.webhook_support import RECORDED_BUCKET, load_event
from triggers.events.eventbridge import EventBridgeEvent
from triggers.events.r2 import parse_r2_payload
from triggers.events.s3 import parse_s3_payload
from triggers.events.sns import SnsEnvelope

SPACE_PLUS = "inbox/Alice Smith/voice memo+take 2 (1).wav"
UNICODE = "inbox/café 日本/portrait-é.png"
MULTIPART = "inbox/keynote/talk.mp3"


def _parse(name: str):
    payload = load_event(name)
    if name.startswith("eventbridge_"):
        return EventBridgeEvent.model_validate(payload).to_events()
    if name.startswith("r2_"):
        return parse_r2_payload(payload)
    if name.startswith("sns_"):
        return SnsEnvelope.model_validate(payload).object_events()
    return parse_s3_payload(payload, "s3")


@pytest.mark.parametrize(
    ("name", "key", "created", "action", "size", "etag", "sequencer"),
    [
        ("s3_put_space_plus.json", SPACE_PLUS, True, "ObjectCreated:Put", 48044, "0123456789abcdef0123456789abcdef", "0065A1B2C3D4E5F601"),
        ("s3_put_unicode.json", UNICODE, True, "ObjectCreated:Put", 20311, "9b2cf535f27731c974343645a3985328", "0065A1B2C3D4E5F602"),
        ("s3_complete_multipart.json", MULTIPART, True, "ObjectCreated:CompleteMultipartUpload", 157286400, "d41d8cd98f00b204e9800998ecf8427e-19", "0065A1B2C3D4E5F603"),
        ("s3_object_removed.json", "inbox/old/clip.png", False, "ObjectRemoved:Delete", None, None, "0065A1B2C3D4E5F604"),
        ("sns_notification.json", SPACE_PLUS, True, "ObjectCreated:Put", 48044, "0123456789abcdef0123456789abcdef", "0065A1B2C3D4E5F601"),
        ("minio_put.json", SPACE_PLUS, True, "ObjectCreated:Put", 48044, "3b83ef96387f14655fc854ddc3c6bd57", "17A1B2C3D4E5F601"),
        ("minio_complete_multipart.json", MULTIPART, True, "ObjectCreated:CompleteMultipartUpload", 157286400, "d41d8cd98f00b204e9800998ecf8427e-19", "17A1B2C3D4E5F601"),
        ("ceph_put.json", UNICODE, True, "ObjectCreated:Put", 20311, "9b2cf535f27731c974343645a3985328", "F7E6D75DC742D108"),
        ("eventbridge_object_created.json", SPACE_PLUS, True, "PutObject", 48044, "3b83ef96387f14655fc854ddc3c6bd57", "0065A1B2C3D4E5F601"),
        ("eventbridge_multipart.json", MULTIPART, True, "CompleteMultipartUpload", 157286400, "d41d8cd98f00b204e9800998ecf8427e-19", "0065A1B2C3D4E5F603"),
        ("eventbridge_object_deleted.json", "inbox/old/clip.png", False, "DeleteObject", None, None, "0065A1B2C3D4E5F604"),
        ("r2_put_object.json", SPACE_PLUS, True, "PutObject", 48044, "3b83ef96387f14655fc854ddc3c6bd57", None),
        ("r2_put_unicode.json", UNICODE, True, "PutObject", 20311, "9b2cf535f27731c974343645a3985328", None),
        ("r2_complete_multipart.json", MULTIPART, True, "CompleteMultipartUpload", 157286400, "d41d8cd98f00b204e9800998ecf8427e-19", None),
        ("r2_copy_object.json", "inbox/keynote/prompt.json", True, "CopyObject", 212, "c846ff7a18f28c2e262116d6e8719ef0", None),
        ("r2_delete_object.json", "inbox/old/clip.png", False, "DeleteObject", None, None, None),
    ],
)  # fmt: skip
def test_recorded_payload_becomes_one_object_event(
    name, key, created, action, size, etag, sequencer
) -> None:
    (event,) = _parse(name)
    assert event.bucket == RECORDED_BUCKET
    assert event.key == key
    assert event.created is created
    assert event.action == action
    assert event.size == size
    assert event.etag == etag
    assert event.sequencer == sequencer
    assert event.event_time is not None and event.event_time.tzinfo is not None


@pytest.mark.parametrize("name", ["s3_test_event.json", "sns_test_event.json"])
def test_s3_test_event_yields_nothing(name: str) -> None:
    assert _parse(name) == []


def test_sns_control_messages_parse() -> None:
    confirm = SnsEnvelope.model_validate(load_event("sns_subscription_confirmation.json"))
    assert confirm.Type == "SubscriptionConfirmation"
    assert confirm.region == "us-east-1"
    assert confirm.string_to_sign().startswith(b"Message\nYou have chosen to subscribe")
    assert b"\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription" in (
        confirm.string_to_sign()
    )
    unsub = SnsEnvelope.model_validate(load_event("sns_unsubscribe_confirmation.json"))
    assert unsub.Type == "UnsubscribeConfirmation"


def test_notification_string_to_sign_includes_subject_only_when_present() -> None:
    payload = load_event("sns_notification.json")
    with_subject = SnsEnvelope.model_validate(payload).string_to_sign()
    assert b"\nSubject\nAmazon S3 Notification\n" in with_subject
    payload.pop("Subject")
    assert b"Subject" not in SnsEnvelope.model_validate(payload).string_to_sign()


def test_keys_are_decoded_with_unquote_plus_not_unquote() -> None:
    record = load_event("s3_put_space_plus.json")
    record["Records"][0]["s3"]["object"]["key"] = "inbox/a%2Bb+c.png"
    (event,) = parse_s3_payload(record, "s3")
    assert event.key == "inbox/a+b c.png"


@pytest.mark.parametrize(
    "payload",
    [
        {"Records": [{"eventName": "ObjectCreated:Put"}]},
        {"Records": "nope"},
        {"something": "else"},
        [],
        "text",
    ],
)
def test_wrong_shapes_are_validation_errors(payload) -> None:
    with pytest.raises(ValidationError):
        parse_s3_payload(json.loads(json.dumps(payload)), "s3")
