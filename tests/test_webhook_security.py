"""Only who should gets in: every refusal has the right status and gives nothing away."""

from __future__ import annotations

import base64
import json
import logging
import time

import pytest
from fastapi.testclient import TestClient

from handlers.runtime import Runtime
from infra.cli import samples
from infra.notify.notifiers import NullNotifier
from tests.webhook_support import (
    CERT_URL,
    TOPIC_ARN,
    Recorder,
    SnsSigner,
    load_event,
    r2_headers,
    s3_record,
    sns_notification,
)
from triggers.webhook import create_app

EB_SECRET = "eb-secret-Kq9rVx2LmN"
S3_TOKEN = "minio-token-Zp4sW8yTb"
R2_SECRET = "r2-secret-Hc7nQ1fGd"
SECRETS = (EB_SECRET, S3_TOKEN, R2_SECRET)
LIMIT = 64 * 1024


@pytest.fixture
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def confirmed() -> list[str]:
    return []


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(s3_storage, make_settings, signer, confirmed, recorder):
    settings = make_settings(
        s3_storage,
        webhook_sns_topic_arns=[TOPIC_ARN],
        webhook_eventbridge_secret=EB_SECRET,
        webhook_s3_token=S3_TOKEN,
        webhook_r2_secret=R2_SECRET,
        webhook_max_body_bytes=LIMIT,
    )
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    app = create_app(
        settings,
        rt,
        recorder,
        cert_fetcher=signer.fetch,
        confirm_subscription=confirmed.append,
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def pair(s3_storage, bucket) -> str:
    """A ready talking-head pair in inbox/alice/; returns the bucket."""
    s3_storage.put("alice/alice.png", samples.portrait_png(64, 64))
    s3_storage.put("alice/alice.wav", samples.voice_wav(seconds=0.6))
    return bucket


def _pair_event(bucket: str) -> dict:
    return {"Records": [s3_record(bucket, "inbox/alice/alice.wav")]}


def _leases(s3_client, bucket: str) -> list[str]:
    listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="inbox/").get("Contents", [])
    return [o["Key"] for o in listed if o["Key"].endswith(".lease")]


# --- SNS -------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_signed_sns_notification_claims_the_job(client, signer, pair, s3_client, version) -> None:
    body = signer.sign(sns_notification(_pair_event(pair)), version=version)
    response = client.post("/events/sns", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["claimed"] == 1
    assert len(_leases(s3_client, pair)) == 1


def test_certificate_is_fetched_once_and_cached(client, signer, pair) -> None:
    for n in range(3):
        body = signer.sign(sns_notification(_pair_event(pair), MessageId=f"m-{n}"))
        assert client.post("/events/sns", json=body).status_code == 200
    assert signer.fetched == [CERT_URL]


def test_unsigned_sns_message_is_401(client, pair, s3_client) -> None:
    body = sns_notification(_pair_event(pair))
    assert client.post("/events/sns", json=body).status_code == 401
    assert _leases(s3_client, pair) == []


def test_forged_sns_signature_is_403(client, signer, pair, s3_client) -> None:
    forger = SnsSigner()  # a different key, pretending to use the trusted certificate URL
    body = forger.sign(sns_notification(_pair_event(pair)), cert_url=CERT_URL)
    assert client.post("/events/sns", json=body).status_code == 403
    tampered = signer.sign(sns_notification(_pair_event(pair)))
    tampered["Message"] = tampered["Message"].replace("alice.wav", "alice.png")
    assert client.post("/events/sns", json=tampered).status_code == 403
    assert _leases(s3_client, pair) == []


def test_wrong_topic_is_403_without_fetching_anything(client, signer, pair) -> None:
    other = "arn:aws:sns:us-east-1:999999999999:someone-elses-topic"
    body = signer.sign(sns_notification(_pair_event(pair), topic_arn=other))
    assert client.post("/events/sns", json=body).status_code == 403
    assert signer.fetched == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://evil.example.com/SimpleNotificationService-1.pem",
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com@evil.example/SimpleNotificationService-1.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/not-a-certificate.txt",
        "https://s3.amazonaws.com/sns.us-east-1.amazonaws.com/x.pem",
        "file:///etc/ssl/cert.pem",
    ],
)
def test_certificate_url_must_be_an_sns_host(client, signer, pair, cert_url) -> None:
    body = signer.sign(sns_notification(_pair_event(pair)), cert_url=cert_url)
    response = client.post("/events/sns", json=body)
    assert response.status_code == 403
    assert signer.fetched == []


def test_unknown_signature_version_is_403(client, signer, pair) -> None:
    body = signer.sign(sns_notification(_pair_event(pair)))
    body["SignatureVersion"] = "3"
    assert client.post("/events/sns", json=body).status_code == 403


def test_expired_certificate_is_403(s3_storage, make_settings, pair) -> None:
    expired = SnsSigner(valid_days=-1)
    settings = make_settings(s3_storage, webhook_sns_topic_arns=[TOPIC_ARN])
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    with TestClient(create_app(settings, rt, Recorder(), cert_fetcher=expired.fetch)) as c:
        body = expired.sign(sns_notification(_pair_event(pair)))
        assert c.post("/events/sns", json=body).status_code == 403


def test_sns_disabled_without_topics(s3_storage, make_settings, signer, pair) -> None:
    settings = make_settings(s3_storage)
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    with TestClient(create_app(settings, rt, Recorder(), cert_fetcher=signer.fetch)) as c:
        body = signer.sign(sns_notification(_pair_event(pair)))
        assert c.post("/events/sns", json=body).status_code == 403
    assert signer.fetched == []


def test_subscription_confirmation_visits_the_subscribe_url(client, signer, confirmed) -> None:
    body = signer.sign(load_event("sns_subscription_confirmation.json"))
    response = client.post(
        "/events/sns", json=body, headers={"x-amz-sns-message-type": "SubscriptionConfirmation"}
    )
    assert response.status_code == 200
    assert response.json() == {"ok": True, "confirmed": True}
    assert confirmed == [body["SubscribeURL"]]


@pytest.mark.parametrize(
    "subscribe_url",
    [
        "https://evil.example.com/?Action=ConfirmSubscription&Token=x",
        "http://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&Token=x",
        "https://sns.us-east-1.amazonaws.com.evil.example/?Action=ConfirmSubscription&Token=x",
        "https://sns.us-east-1.amazonaws.com/?Action=DeleteTopic&TopicArn=x",
    ],
)
def test_subscribe_url_must_be_an_sns_confirmation(
    client, signer, confirmed, subscribe_url
) -> None:
    envelope = load_event("sns_subscription_confirmation.json")
    envelope["SubscribeURL"] = subscribe_url
    response = client.post("/events/sns", json=signer.sign(envelope))
    assert response.status_code == 403
    assert confirmed == []


def test_unsubscribe_confirmation_is_acknowledged(client, signer, confirmed) -> None:
    body = signer.sign(load_event("sns_unsubscribe_confirmation.json"))
    assert client.post("/events/sns", json=body).status_code == 200
    assert confirmed == []


def test_sns_test_event_is_ignored(client, signer) -> None:
    body = signer.sign(load_event("sns_test_event.json"))
    response = client.post("/events/sns", json=body)
    assert response.status_code == 200
    assert response.json()["events"] == 0


def test_message_type_header_must_match(client, signer, pair) -> None:
    body = signer.sign(sns_notification(_pair_event(pair)))
    response = client.post(
        "/events/sns", json=body, headers={"x-amz-sns-message-type": "SubscriptionConfirmation"}
    )
    assert response.status_code == 400


def test_signed_but_non_s3_message_is_400(client, signer) -> None:
    body = signer.sign(sns_notification("hello, not an S3 event"))
    assert client.post("/events/sns", json=body).status_code == 400


# --- EventBridge, raw S3 (MinIO/Ceph), R2 ---------------------------------------------------


def test_eventbridge_secret_header(client, pair, s3_client) -> None:
    event = load_event("eventbridge_object_created.json", bucket=pair)
    event["detail"]["object"]["key"] = "inbox/alice/alice.wav"
    assert client.post("/events/eventbridge", json=event).status_code == 401
    wrong = {"x-dropreel-secret": "not-it"}
    assert client.post("/events/eventbridge", json=event, headers=wrong).status_code == 403
    assert _leases(s3_client, pair) == []
    right = {"x-dropreel-secret": EB_SECRET}
    response = client.post("/events/eventbridge", json=event, headers=right)
    assert response.status_code == 200
    assert response.json()["claimed"] == 1


@pytest.mark.parametrize(
    "authorization",
    [
        f"Bearer {S3_TOKEN}",
        S3_TOKEN,
        "Basic " + base64.b64encode(f"dropreel:{S3_TOKEN}".encode()).decode(),
    ],
)
def test_raw_s3_token_forms(client, pair, authorization) -> None:
    response = client.post(
        "/events/s3", json=_pair_event(pair), headers={"authorization": authorization}
    )
    assert response.status_code == 200
    assert response.json()["events"] == 1


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer wrong-token", 403),
        ("Bearer ", 403),
        ("Basic !!!not-base64", 401),
        ("Basic " + base64.b64encode(b"dropreel:wrong").decode(), 403),
        (f"Bearer {S3_TOKEN}x", 403),
    ],
)
def test_raw_s3_bad_tokens(client, pair, s3_client, authorization, status) -> None:
    headers = {"authorization": authorization} if authorization is not None else {}
    response = client.post("/events/s3", json=_pair_event(pair), headers=headers)
    assert response.status_code == status
    assert _leases(s3_client, pair) == []


def _r2_body(bucket: str) -> bytes:
    message = load_event("r2_put_object.json", bucket=bucket)
    message["object"]["key"] = "inbox/alice/alice.wav"
    return json.dumps(message).encode()


def test_r2_signed_message_claims(client, pair) -> None:
    body = _r2_body(pair)
    response = client.post("/events/r2", content=body, headers=r2_headers(R2_SECRET, body))
    assert response.status_code == 200
    assert response.json()["claimed"] == 1


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("unsigned", 401),
        ("no-timestamp", 401),
        ("bad-timestamp", 401),
        ("stale", 401),
        ("future", 401),
        ("forged", 403),
        ("tampered", 403),
        ("old-signature-new-time", 403),
    ],
)
def test_r2_refusals(client, pair, s3_client, case, status) -> None:
    body = _r2_body(pair)
    headers = r2_headers(R2_SECRET, body)
    if case == "unsigned":
        headers = {"content-type": "application/json"}
    elif case == "no-timestamp":
        headers.pop("x-dropreel-timestamp")
    elif case == "bad-timestamp":
        headers["x-dropreel-timestamp"] = "yesterday"
    elif case == "stale":
        headers = r2_headers(R2_SECRET, body, timestamp=time.time() - 301)
    elif case == "future":
        headers = r2_headers(R2_SECRET, body, timestamp=time.time() + 301)
    elif case == "forged":
        headers = r2_headers("guessed-secret", body)
    elif case == "tampered":
        body = body.replace(b"alice.wav", b"alice.png")
    elif case == "old-signature-new-time":
        old = r2_headers(R2_SECRET, body, timestamp=time.time() - 400)
        headers["x-dropreel-signature"] = old["x-dropreel-signature"]
    response = client.post("/events/r2", content=body, headers=headers)
    assert response.status_code == status
    assert _leases(s3_client, pair) == []


def test_disabled_sources_refuse_everything(s3_storage, make_settings, pair) -> None:
    settings = make_settings(s3_storage)
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    with TestClient(create_app(settings, rt, Recorder())) as c:
        body = json.dumps(_pair_event(pair)).encode()
        assert (
            c.post("/events/s3", content=body, headers={"authorization": "Bearer x"}).status_code
            == 403
        )
        assert (
            c.post(
                "/events/eventbridge", content=body, headers={"x-dropreel-secret": "x"}
            ).status_code
            == 403
        )
        assert c.post("/events/r2", content=body, headers=r2_headers("x", body)).status_code == 403


# --- bodies ---------------------------------------------------------------------------------


def _authorized(route: str, body: bytes, signer: SnsSigner) -> dict[str, str]:
    if route == "/events/eventbridge":
        return {"x-dropreel-secret": EB_SECRET}
    if route == "/events/s3":
        return {"authorization": f"Bearer {S3_TOKEN}"}
    if route == "/events/r2":
        return r2_headers(R2_SECRET, body)
    return {}


ROUTES = ["/events/sns", "/events/eventbridge", "/events/s3", "/events/r2"]


@pytest.mark.parametrize("route", ROUTES)
def test_oversized_body_is_413(client, signer, route) -> None:
    body = b'{"pad": "' + b"x" * (LIMIT + 10) + b'"}'
    headers = _authorized(route, body, signer)
    assert client.post(route, content=body, headers=headers).status_code == 413

    def chunks():  # no Content-Length: the limit holds while streaming too
        for _ in range(LIMIT // 1024 + 2):
            yield b"x" * 1024

    assert client.post(route, content=chunks(), headers=headers).status_code in (401, 403, 413)


def test_streamed_oversized_body_is_413_for_an_authorized_sender(client) -> None:
    def chunks():
        for _ in range(LIMIT // 1024 + 2):
            yield b"x" * 1024

    headers = {"authorization": f"Bearer {S3_TOKEN}"}
    assert client.post("/events/s3", content=chunks(), headers=headers).status_code == 413


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "body", [b"{not json", b"", b"   ", b"\xff\xfe\x00", b"[1, 2, 3]", b'{"Records": 5}', b"null"]
)
def test_malformed_bodies_are_400(client, signer, route, body) -> None:
    response = client.post(route, content=body, headers=_authorized(route, body, signer))
    assert response.status_code == 400, response.text
    assert "error" in response.json()


def test_odd_keys_are_ignored_not_errors(client, bucket) -> None:
    keys = [
        "inbox/../secrets/x.png",
        "inbox/a//b.png",
        "inbox/./a.png",
        "inbox/a\\b.png",
        "inbox/" + "d/" * 300 + "deep.png",
    ]
    event = {"Records": [s3_record(bucket, k) for k in keys]}
    response = client.post(
        "/events/s3", json=event, headers={"authorization": f"Bearer {S3_TOKEN}"}
    )
    assert response.status_code == 200
    assert response.json()["ignored"] >= 4


def test_no_secret_in_any_response_or_log(client, signer, pair, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    body = json.dumps(_pair_event(pair)).encode()
    attempts = [
        ("/events/s3", {"authorization": "Bearer wrong"}),
        ("/events/s3", {"authorization": f"Bearer {S3_TOKEN}"}),
        ("/events/eventbridge", {"x-dropreel-secret": "wrong"}),
        ("/events/r2", r2_headers("wrong", body)),
        ("/events/r2", r2_headers(R2_SECRET, body, timestamp=time.time() - 1000)),
        ("/events/r2", r2_headers(R2_SECRET, b"{bad")),
    ]
    for route, headers in attempts:
        texts.append(client.post(route, content=body, headers=headers).text)
    texts.append(client.post("/events/s3", content=b"{bad", headers=attempts[1][1]).text)
    everything = "\n".join(texts) + caplog.text
    for secret in SECRETS:
        assert secret not in everything
    expected = r2_headers(R2_SECRET, body)["x-dropreel-signature"]
    assert expected.removeprefix("v1=") not in everything


def test_health_and_probe(client) -> None:
    assert client.get("/healthz").json() == {"ok": True}
    assert client.head("/events/s3").status_code == 200
    assert client.get("/events/s3").status_code == 405


# --- robustness: nothing a sender can put in a body makes a 500 -----------------------------

ODD_VALUES = [None, 0, -1, 1e308, True, "", "x" * 5000, [], {}, [1, "a"], {"a": {"b": []}}]


def _mutations(payload):
    """The payload with each field (at every depth) removed or replaced by an odd value."""

    def walk(node, path):
        if isinstance(node, dict):
            for key in list(node):
                yield (*path, key)
                yield from walk(node[key], (*path, key))
        elif isinstance(node, list) and node:
            yield (*path, 0)
            yield from walk(node[0], (*path, 0))

    def with_change(path, value, remove=False):
        copy = json.loads(json.dumps(payload))
        parent = copy
        for step in path[:-1]:
            parent = parent[step]
        if remove:
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
        return copy

    for path in walk(payload, ()):
        yield with_change(path, None, remove=True)
        for value in ODD_VALUES:
            yield with_change(path, value)


def _send(client, signer, route: str, payload) -> int:
    if route == "/events/sns":
        message = payload if isinstance(payload, str) else json.dumps(payload)
        body = json.dumps(signer.sign(sns_notification(message))).encode()
    else:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(route, content=body, headers=_authorized(route, body, signer)).status_code


@pytest.mark.parametrize(
    ("route", "recorded"),
    [
        ("/events/s3", "minio_put.json"),
        ("/events/sns", "s3_put_space_plus.json"),
        ("/events/eventbridge", "eventbridge_object_created.json"),
        ("/events/r2", "r2_put_object.json"),
    ],
)
def test_mutated_payloads_never_make_a_5xx(client, signer, bucket, route, recorded) -> None:
    payload = load_event(recorded, bucket=bucket)
    statuses = {_send(client, signer, route, mutated) for mutated in _mutations(payload)}
    assert statuses <= {200, 400}, statuses


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_json_is_400(client, signer, bucket, route) -> None:
    deep = b"[" * 30_000 + b"]" * 30_000
    assert _send(client, signer, route, deep if route != "/events/sns" else "[" * 30_000) == 400
    many = {"Records": [s3_record(bucket, f"inbox/f{n}/a.png") for n in range(101)]}
    if route in ("/events/s3", "/events/sns"):
        assert _send(client, signer, route, many) == 400


def test_keys_that_no_bucket_can_hold_are_refused_or_ignored(client, signer, bucket) -> None:
    headers = {"authorization": f"Bearer {S3_TOKEN}"}
    surrogate = json.dumps({"Records": [s3_record(bucket, "inbox/a/b.png")]}).replace(
        "inbox/a/b.png", "inbox/a/\\ud800.png"
    )
    assert client.post("/events/s3", content=surrogate.encode(), headers=headers).status_code == 400
    signed = signer.sign(sns_notification(surrogate))  # a lone surrogate inside the signed text
    assert client.post("/events/sns", content=json.dumps(signed).encode()).status_code == 400
    too_long = {"Records": [s3_record(bucket, "inbox/" + "k" * 1100 + ".png")]}
    response = client.post("/events/s3", json=too_long, headers=headers)
    assert response.status_code == 200
    assert response.json()["ignored"] == 1
