"""Each recorded payload, posted to its route, claims the job at the decoded key (or is ignored).

What a sender sees is the answer's counts; what a user sees is the claim written next to their
files, in the folder the key names once decoded (`voice memo+take 2 (1).wav`, `café 日本`).
"""

from __future__ import annotations

import json
from urllib.parse import quote_plus

import pytest
from fastapi.testclient import TestClient

from handlers.lifecycle import Runtime
from infra.cli import samples
from infra.notify.notifiers import NullNotifier
from tests.webhook_support import (
    Recorder,
    SnsSigner,
    every_source,
    load_event,
    r2_headers,
    s3_record,
)
from triggers.events.sns import SnsEnvelope
from triggers.webhook import create_app

EB_SECRET = "eb-secret-events"
S3_TOKEN = "s3-token-events"
R2_SECRET = "r2-secret-events"
SPACE_PLUS = "inbox/Alice Smith/voice memo+take 2 (1).wav"
UNICODE = "inbox/café 日本/portrait-é.png"
MULTIPART = "inbox/keynote/talk.mp3"
PLUS_PERCENT = "inbox/C++ 100%/take+1 (final).wav"
DELETED = "inbox/old/clip.png"


@pytest.fixture
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def client(s3_storage, make_settings, signer):
    settings = make_settings(s3_storage, **every_source(EB_SECRET, S3_TOKEN, R2_SECRET))
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    app = create_app(
        settings, rt, Recorder(), cert_fetcher=signer.fetch, confirm_subscription=print
    )
    with TestClient(app) as test_client:
        yield test_client


def _post(client: TestClient, signer: SnsSigner, name: str, bucket: str):
    """Deliver a recorded payload the way its sender does."""
    payload = load_event(name, bucket=bucket)
    if name.startswith("sns_"):
        return client.post("/events/sns", json=signer.sign(payload))
    if name.startswith("eventbridge_"):
        return client.post(
            "/events/eventbridge", json=payload, headers={"x-dropreel-secret": EB_SECRET}
        )
    if name.startswith("r2_"):
        body = json.dumps(payload).encode()
        return client.post("/events/r2", content=body, headers=r2_headers(R2_SECRET, body))
    return client.post("/events/s3", json=payload, headers={"authorization": f"Bearer {S3_TOKEN}"})


def _drop_job(storage, key: str) -> None:
    """The file the event names, plus what makes its folder a ready job."""
    relative = key.removeprefix("inbox/")
    folder, _, name = relative.rpartition("/")
    if name.endswith(".json"):
        storage.put(relative, json.dumps({"prompt": "a lighthouse at dusk"}).encode())
        return
    audio = name.endswith((".wav", ".mp3"))
    storage.put(relative, samples.voice_wav(seconds=0.6) if audio else samples.portrait_png(64, 64))
    partner = f"{folder}/face.png" if audio else f"{folder}/voice.wav"
    storage.put(partner, samples.portrait_png(64, 64) if audio else samples.voice_wav(seconds=0.6))


def _claimed_folders(s3_client, bucket: str) -> set[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="inbox/").get("Contents", [])
    return {o["Key"].split("/.dropreel/")[0] for o in listed if o["Key"].endswith(".lease")}


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("s3_put_space_plus.json", SPACE_PLUS),
        ("s3_put_unicode.json", UNICODE),
        ("s3_complete_multipart.json", MULTIPART),
        ("sns_notification.json", SPACE_PLUS),
        ("minio_put.json", SPACE_PLUS),
        ("minio_complete_multipart.json", MULTIPART),
        ("minio_put_plus_percent.json", PLUS_PERCENT),
        ("ceph_put.json", UNICODE),
        ("ceph_put_plus_percent.json", PLUS_PERCENT),
        ("eventbridge_object_created.json", SPACE_PLUS),
        ("eventbridge_multipart.json", MULTIPART),
        ("r2_put_object.json", SPACE_PLUS),
        ("r2_put_unicode.json", UNICODE),
        ("r2_complete_multipart.json", MULTIPART),
        ("r2_copy_object.json", "inbox/keynote/prompt.json"),
    ],
)
def test_recorded_creation_claims_the_job_at_the_decoded_key(
    client, signer, s3_storage, s3_client, bucket, name, key
) -> None:
    _drop_job(s3_storage, key)
    response = _post(client, signer, name, bucket)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "ok": True, "events": 1, "ignored": 0, "folders": 1, "claimed": 1, "settling": 0
    }  # fmt: skip
    assert _claimed_folders(s3_client, bucket) == {key.rpartition("/")[0]}


@pytest.mark.parametrize(
    "name", ["s3_object_removed.json", "eventbridge_object_deleted.json", "r2_delete_object.json"]
)
def test_recorded_deletion_is_ignored(client, signer, s3_storage, s3_client, bucket, name) -> None:
    _drop_job(s3_storage, DELETED)
    response = _post(client, signer, name, bucket)
    assert response.status_code == 200, response.text
    assert response.json()["ignored"] == 1 and response.json()["claimed"] == 0
    assert _claimed_folders(s3_client, bucket) == set()


@pytest.mark.parametrize("name", ["s3_test_event.json", "sns_test_event.json"])
def test_s3_test_event_yields_nothing(client, signer, bucket, name: str) -> None:
    response = _post(client, signer, name, bucket)
    assert response.status_code == 200, response.text
    assert response.json()["events"] == 0


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


def test_keys_are_decoded_with_unquote_plus_not_unquote(client, s3_storage, s3_client, bucket):
    _drop_job(s3_storage, "inbox/x+y/a+b c.png")
    record = s3_record(bucket, "inbox/x+y/a+b c.png")
    assert record["s3"]["object"]["key"] == quote_plus("inbox/x+y/a+b c.png", safe="/")
    record["s3"]["object"]["key"] = "inbox/x%2By/a%2Bb+c.png"
    response = client.post(
        "/events/s3", json={"Records": [record]}, headers={"authorization": f"Bearer {S3_TOKEN}"}
    )
    assert response.json()["claimed"] == 1
    assert _claimed_folders(s3_client, bucket) == {"inbox/x+y"}


@pytest.mark.parametrize(
    ("payload", "where"),
    [
        ({"Records": [{"eventName": "ObjectCreated:Put"}]}, "Records.0.s3"),
        ({"Records": "nope"}, "Records"),
        ({"something": "else"}, "Records"),
        ([], "body"),
        ("text", "body"),
    ],
)
def test_wrong_shapes_are_400_naming_the_field(client, payload, where) -> None:
    response = client.post(
        "/events/s3", json=payload, headers={"authorization": f"Bearer {S3_TOKEN}"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"not an S3 event notification: {where}: ")


@pytest.mark.parametrize(
    ("record_fields", "sent_key"),
    [
        ({"eventSource": "ceph:s3"}, PLUS_PERCENT),
        ({"eventSource": "aws:s3", "opaqueData": ""}, PLUS_PERCENT),  # older RGW releases
        ({"eventSource": "aws:s3"}, quote_plus(PLUS_PERCENT, safe="/")),
        ({"eventSource": "minio:s3"}, quote_plus(PLUS_PERCENT)),
    ],
)
def test_each_s3_family_sender_key_is_decoded_as_that_sender_encodes_it(
    client, s3_storage, s3_client, bucket, record_fields, sent_key
) -> None:
    """RGW keys are raw (a `+` is a plus, `%` a percent); AWS and MinIO keys are form-encoded."""
    _drop_job(s3_storage, PLUS_PERCENT)
    record = {**s3_record(bucket, PLUS_PERCENT), **record_fields}
    record["s3"]["object"]["key"] = sent_key
    response = client.post(
        "/events/s3", json={"Records": [record]}, headers={"authorization": f"Bearer {S3_TOKEN}"}
    )
    assert response.json()["claimed"] == 1, response.text
    assert _claimed_folders(s3_client, bucket) == {"inbox/C++ 100%"}
