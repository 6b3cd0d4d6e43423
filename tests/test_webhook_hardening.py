"""Webhook cases that once gave a 500, cost unbounded fetches or let old messages in.

What a sender sees is the HTTP status and the message; what the operator sees is how many
certificate fetches went out and that no traceback reached the log.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import uvicorn
from fastapi.testclient import TestClient

from handlers.runtime import Runtime
from infra.cli.serve import server_config
from infra.notify.notifiers import NullNotifier
from tests.webhook_support import (
    CERT_URL,
    TOPIC_ARN,
    Recorder,
    SnsSigner,
    r2_headers,
    s3_record,
    serve,
    sns_notification,
    wait_for,
)
from triggers import sns_signature
from triggers.webhook import create_app

R2_SECRET = "r2-secret-hardening"
SNS_HOST = "https://sns.us-east-1.amazonaws.com/"


class Clock:
    """The verifier's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class CountingFetcher:
    """A certificate source that serves `signer`'s PEM at its URL and fails everywhere else."""

    def __init__(self, signer: SnsSigner) -> None:
        self.signer = signer
        self.fetched: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, url: str) -> bytes:
        with self.lock:
            self.fetched.append(url)
        time.sleep(0.05)  # concurrent requests arrive while the fetch is in flight
        if url == self.signer.cert_url:
            return self.signer.pem()
        raise OSError("connection reset")


@pytest.fixture
def signer() -> SnsSigner:
    return SnsSigner()


@pytest.fixture
def fetcher(signer) -> CountingFetcher:
    return CountingFetcher(signer)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def client(s3_storage, make_settings, fetcher, clock, monkeypatch):
    settings = make_settings(
        s3_storage, webhook_sns_topic_arns=[TOPIC_ARN], webhook_r2_secret=R2_SECRET
    )
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    real = sns_signature.SnsVerifier

    def verifier_on_test_clock(topics, fetch=None):
        return real(topics, fetch, now=clock)

    monkeypatch.setattr("triggers.webhook.SnsVerifier", verifier_on_test_clock)
    app = create_app(settings, rt, Recorder(), cert_fetcher=fetcher)
    with TestClient(app) as test_client:
        yield test_client


def _notification(bucket: str, **extra: str) -> dict:
    return sns_notification({"Records": [s3_record(bucket, "inbox/a/a.wav")]}, **extra)


# --- R2 timestamps ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 400, "1" * 5000, "-" + "9" * 300, " 1700000000", "1_700_000_000", "١٧٠٠٠٠٠٠٠٠", "1e9"],
)
def test_an_r2_timestamp_that_is_not_plain_seconds_is_401_not_500(client, timestamp) -> None:
    body = json.dumps({"action": "PutObject", "bucket": "b", "object": {"key": "a"}}).encode()
    headers = r2_headers(R2_SECRET, body)
    headers["x-dropreel-timestamp"] = timestamp.encode()  # type: ignore[assignment]
    response = client.post("/events/r2", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "X-Dropreel-Timestamp must be Unix seconds (digits only)"}


# --- SNS freshness ---------------------------------------------------------------------------


def test_a_signed_sns_message_older_than_sns_ever_retries_is_refused(
    client, signer, bucket, clock
) -> None:
    sent = clock.now - timedelta(minutes=66)
    response = client.post("/events/sns", json=signer.sign(_notification(bucket), timestamp=sent))
    assert response.status_code == 401
    assert "more than 65 minutes ago" in response.json()["error"]


def test_a_retry_within_the_hour_sns_retries_is_accepted(client, signer, bucket, clock) -> None:
    sent = clock.now - timedelta(minutes=59)
    response = client.post("/events/sns", json=signer.sign(_notification(bucket), timestamp=sent))
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("timestamp", ["yesterday", "2026-11-20T10:00:00"])
def test_an_unreadable_sns_timestamp_is_401(client, signer, bucket, timestamp) -> None:
    body = signer.sign(_notification(bucket))
    body["Timestamp"] = timestamp
    assert client.post("/events/sns", json=body).status_code == 401


def test_an_sns_timestamp_from_the_future_is_401(client, signer, bucket, clock) -> None:
    sent = clock.now + timedelta(minutes=10)
    response = client.post("/events/sns", json=signer.sign(_notification(bucket), timestamp=sent))
    assert response.status_code == 401
    assert "in the future" in response.json()["error"]


# --- certificate fetches ---------------------------------------------------------------------


def test_each_failing_certificate_url_is_fetched_once_per_ttl(
    client, signer, bucket, fetcher, clock
) -> None:
    urls = [f"{SNS_HOST}SimpleNotificationService-{n:04x}.pem" for n in range(3)]
    for _ in range(4):
        for url in urls:
            body = signer.sign(_notification(bucket), cert_url=url)
            response = client.post("/events/sns", json=body)
            assert response.status_code == 503
            assert response.json() == {
                "error": "the SNS signing certificate could not be fetched right now"
            }
    assert sorted(fetcher.fetched) == sorted(urls)
    clock.now += sns_signature.FAILURE_TTL + timedelta(seconds=1)
    body = signer.sign(_notification(bucket), cert_url=urls[0], timestamp=clock.now)
    assert client.post("/events/sns", json=body).status_code == 503
    assert fetcher.fetched.count(urls[0]) == 2


def test_concurrent_messages_share_one_certificate_fetch(client, signer, bucket, fetcher) -> None:
    bodies = [signer.sign(_notification(bucket, MessageId=f"m-{n}")) for n in range(8)]
    statuses: list[int] = []
    threads = [
        threading.Thread(
            target=lambda b=b: statuses.append(client.post("/events/sns", json=b).status_code)
        )
        for b in bodies
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [200] * 8
    assert fetcher.fetched == [CERT_URL]


def test_a_good_certificate_is_fetched_again_after_its_ttl(
    client, signer, bucket, fetcher, clock
) -> None:
    assert client.post("/events/sns", json=signer.sign(_notification(bucket))).status_code == 200
    clock.now += timedelta(hours=1)
    body = signer.sign(_notification(bucket), timestamp=clock.now)
    assert client.post("/events/sns", json=body).status_code == 200
    assert fetcher.fetched == [CERT_URL]
    clock.now += sns_signature.KEY_TTL
    body = signer.sign(_notification(bucket), timestamp=clock.now)
    assert client.post("/events/sns", json=body).status_code == 200
    assert fetcher.fetched == [CERT_URL, CERT_URL]


def test_failing_urls_beyond_the_bound_are_refused_without_a_fetch(
    client, signer, bucket, fetcher, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(sns_signature, "MAX_FAILURES", 3)
    caplog.set_level(logging.WARNING)
    for n in range(6):
        body = signer.sign(_notification(bucket), cert_url=f"{SNS_HOST}x-{n}.pem")
        assert client.post("/events/sns", json=body).status_code == 503
    assert len(fetcher.fetched) == 3
    assert "Traceback" not in caplog.text


# --- half-sent requests under uvicorn ----------------------------------------------------------


@pytest.fixture
def served(s3_storage, make_settings, monkeypatch):
    monkeypatch.setattr("triggers.delivery.BODY_READ_TIMEOUT", 0.5)
    settings = make_settings(s3_storage, webhook_s3_token="serve-token")
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    with serve(create_app(settings, rt, Recorder())) as url:
        yield url.removeprefix("http://").split(":")


def _half_sent(host: str, port: str) -> socket.socket:
    sock = socket.create_connection((host, int(port)), timeout=5)
    sock.sendall(
        b"POST /events/s3 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer serve-token\r\n"
        b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"Records": ['
    )
    return sock


def test_a_body_that_stops_arriving_is_408(served, caplog) -> None:
    caplog.set_level(logging.WARNING)
    answer = b""
    with _half_sent(*served) as sock:
        while b'"}' not in answer and (chunk := sock.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert answer.endswith(b'{"error":"no part of the body arrived for 0.5s; send it whole"}')
    assert "Traceback" not in caplog.text


def test_a_sender_that_hangs_up_mid_body_is_one_line_not_a_traceback(served, caplog) -> None:
    caplog.set_level(logging.INFO)
    _half_sent(*served).close()
    wait_for(lambda: "hung up before the body was complete" in caplog.text, timeout=10)
    assert "Traceback" not in caplog.text
    assert not [r for r in caplog.records if r.exc_info]


@pytest.fixture
def dropreel_serve(s3_storage, make_settings, monkeypatch):
    """The webhook under `dropreel serve`'s own uvicorn configuration, header deadline 0.5 s."""
    monkeypatch.setattr("infra.cli.header_deadline.HEADER_SECONDS", 0.5)
    settings = make_settings(s3_storage, webhook_s3_token="serve-token")
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    server = uvicorn.Server(server_config(create_app(settings, rt, Recorder()), "127.0.0.1", 0))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20)
    yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(timeout=20)


def _read_all(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(4096):
        answer += chunk
    return answer


def test_headers_that_never_finish_are_disconnected(dropreel_serve, caplog) -> None:
    caplog.set_level(logging.WARNING)
    with socket.create_connection(dropreel_serve, timeout=10) as sock:
        sock.sendall(b"POST /events/s3 HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert _read_all(sock) == b""  # closed by the server, no answer
    assert "request headers not complete" in caplog.text
    assert "Traceback" not in caplog.text


def test_a_silent_connection_is_disconnected(dropreel_serve) -> None:
    with socket.create_connection(dropreel_serve, timeout=10) as sock:
        assert _read_all(sock) == b""


def test_a_keep_alive_request_after_a_pause_gets_the_deadline_too(dropreel_serve) -> None:
    request = b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(dropreel_serve, timeout=10) as sock:
        sock.sendall(request)
        first = b""
        while b"\r\n\r\n" not in first:
            first += sock.recv(4096)
        assert first.startswith(b"HTTP/1.1 404 ")
        sock.sendall(b"GET /nowhere HTTP/1.1\r\n")  # the second request stalls
        assert b"HTTP/1.1 404" not in _read_all(sock)


def test_whole_requests_are_served_under_the_deadline(dropreel_serve) -> None:
    with socket.create_connection(dropreel_serve, timeout=10) as sock:
        sock.sendall(b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _read_all(sock).startswith(b"HTTP/1.1 404 ")
