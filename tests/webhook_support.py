"""Helpers for the webhook tests: recorded events, an SNS signer, uvicorn on loopback."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from triggers import auth
from triggers.events.sns import NOTIFICATION_FIELDS, SUBSCRIPTION_FIELDS

EVENTS = Path(__file__).parent / "events"
RECORDED_BUCKET = "example-bucket"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:dropreel-events"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem"


class Recorder:
    """Dispatcher that records claimed jobs without rendering (for tests about the door)."""

    def __init__(self) -> None:
        self.jobs: list[str] = []

    def dispatch(self, job, lease) -> None:
        self.jobs.append(job.name)


def every_source(eventbridge_secret: str, s3_token: str, r2_secret: str) -> dict[str, Any]:
    """Settings that enable all four senders (SNS for TOPIC_ARN) with these secrets."""
    return {
        "webhook_sns_topic_arns": [TOPIC_ARN],
        "webhook_eventbridge_secret": eventbridge_secret,
        "webhook_s3_token": s3_token,
        "webhook_r2_secret": r2_secret,
    }


def load_event(name: str, bucket: str | None = None) -> Any:
    """A recorded payload from tests/events/, with its bucket name swapped if asked."""
    text = (EVENTS / name).read_text(encoding="utf-8")
    if bucket:
        text = text.replace(RECORDED_BUCKET, bucket)
    return json.loads(text)


class SnsSigner:
    """Signs SNS envelopes like SNS does, with a key and certificate made here (no network)."""

    def __init__(self, cert_url: str = CERT_URL, valid_days: int = 30) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=valid_days))
            .sign(self.key, hashes.SHA256())
        )
        self.cert_url = cert_url
        self.fetched: list[str] = []

    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def fetch(self, url: str) -> bytes:
        """The injected trusted certificate source: only knows this signer's URL."""
        self.fetched.append(url)
        if url != self.cert_url:
            raise AssertionError(f"unexpected certificate fetch: {url}")
        return self.pem()

    def sign(
        self,
        envelope: dict,
        version: str = "2",
        cert_url: str | None = None,
        timestamp: datetime | None = None,
    ) -> dict:
        """Sign like SNS does when it publishes: the Timestamp is now unless one is given."""
        signed = dict(envelope)
        sent = timestamp or datetime.now(UTC)
        signed["Timestamp"] = sent.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        signed["SignatureVersion"] = version
        signed["SigningCertURL"] = cert_url or self.cert_url
        names = NOTIFICATION_FIELDS if signed["Type"] == "Notification" else SUBSCRIPTION_FIELDS
        text = "".join(
            f"{name}\n{signed[name]}\n" for name in names if signed.get(name) is not None
        )
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        signed["Signature"] = base64.b64encode(signature).decode()
        return signed


def sns_notification(message: dict | str, topic_arn: str = TOPIC_ARN, **extra: str) -> dict:
    return {
        "Type": "Notification",
        "MessageId": extra.pop("MessageId", "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"),
        "TopicArn": topic_arn,
        "Message": message if isinstance(message, str) else json.dumps(message),
        "Timestamp": "2026-11-20T10:00:00.000Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1",
        **extra,
    }


def r2_headers(secret: str, body: bytes, timestamp: float | None = None) -> dict[str, str]:
    ts = str(int(time.time() if timestamp is None else timestamp))
    return {
        "content-type": "application/json",
        "x-dropreel-timestamp": ts,
        "x-dropreel-signature": auth.sign(secret, ts, body),
    }


def s3_record(bucket: str, key: str, name: str = "ObjectCreated:Put", size: int = 1) -> dict:
    """One AWS-shaped record with the key URL-encoded the way S3 does it."""
    from urllib.parse import quote_plus

    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-20T10:00:00.000Z",
        "eventName": name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "dropreel",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": "0123456789abcdef0123456789abcdef",
                "sequencer": "0065A1B2C3D4E5F601",
            },
        },
    }


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (a free port); yields its base URL.

    uvicorn binds the socket itself, so accepted connections get TCP_NODELAY (a socket bound
    here without IPPROTO_TCP would not, and every response would wait ~40 ms for a delayed ACK).
    """
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", access_log=False
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.05) -> Any:
    """Poll until predicate() is truthy (returns it); raises on timeout. Never asserts timing."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
