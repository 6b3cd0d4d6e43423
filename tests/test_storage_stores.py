"""Conditional writes as each S3 store answers them, over real HTTP to moto.

Each store is moto behind a botocore `before-send` hook that answers the way that store does
where it differs from AWS: Ceph RGW 16.2 matches If-Match only against the bare ETag, AWS answers
409 ConditionalRequestConflict while another conditional write on the key is in flight, and some
proxies in front of a store mangle the Date header. What the tests check is what a claim or a
heartbeat sees: the write lands, or a lost race is a PreconditionFailed, never a crash.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from botocore.awsrequest import AWSResponse

from handlers.errors import PreconditionFailed, TransientStorageError
from infra.storage.s3 import CONFLICT_RETRIES, S3Storage, make_client


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: object):
        yield self.body


def _answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> AWSResponse:
    return AWSResponse("http://store", status, headers or {}, _Raw(body))


def _error(status: int, code: str) -> AWSResponse:
    xml = f"<Error><Code>{code}</Code><Message>{code}</Message></Error>".encode()
    return _answer(status, xml, {"content-type": "application/xml"})


def _store(moto_endpoint: str, bucket: str, behave: Callable) -> tuple[S3Storage, list[dict]]:
    """An S3Storage whose requests pass `behave` first; it returns a response or None (moto)."""
    client = make_client(moto_endpoint, "us-east-1")
    seen: list[dict] = []

    def before_send(request, **_):
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in headers.items()}
        seen.append({"method": request.method, **headers})
        return behave(request.method, headers)

    client.meta.events.register("before-send.s3.*", before_send)
    return S3Storage(bucket, "inbox/", client=client), seen


def ceph_rgw_16(method: str, headers: dict[str, str]) -> AWSResponse | None:
    """RGW 16.2: an If-Match in quotes never matches (it compares against the bare ETag)."""
    if method == "PUT" and headers.get("if-match", "").startswith('"'):
        return _error(412, "PreconditionFailed")
    return None


def test_compare_and_swap_works_on_a_store_that_only_matches_bare_etags(moto_endpoint, bucket):
    storage, seen = _store(moto_endpoint, bucket, ceph_rgw_16)
    etag = storage.put_if_absent("j/.dropreel/j/v.lease", b"claim")
    renewed = storage.put_if_match("j/.dropreel/j/v.lease", b"heartbeat", etag)
    # an ETag handed over in the quoted form S3 returns it is sent bare too
    storage.put_if_match("j/.dropreel/j/v.lease", b"again", f'"{renewed}"')
    assert storage.get("j/.dropreel/j/v.lease") == b"again"
    with pytest.raises(PreconditionFailed):  # a stale ETag still loses
        storage.put_if_match("j/.dropreel/j/v.lease", b"stale", etag)
    sent = [h["if-match"] for h in seen if "if-match" in h]
    assert sent and all(not value.startswith('"') for value in sent)


def test_compare_and_swap_with_a_quoted_etag_works_on_aws_like_moto(s3_storage):
    """moto, like AWS, MinIO and R2, compares with or without quotes."""
    etag = s3_storage.put_if_absent("k.lease", b"1")
    s3_storage.put_if_match("k.lease", b"2", f'"{etag}"')
    assert s3_storage.get("k.lease") == b"2"


def test_a_conditional_write_conflict_is_sent_again_and_then_lands(moto_endpoint, bucket):
    conflicts = iter(range(CONFLICT_RETRIES - 1))

    def aws_busy(method: str, headers: dict[str, str]) -> AWSResponse | None:
        if method == "PUT" and "if-none-match" in headers and next(conflicts, None) is not None:
            return _error(409, "ConditionalRequestConflict")
        return None

    storage, seen = _store(moto_endpoint, bucket, aws_busy)
    storage.put_if_absent("a.lease", b"mine")
    assert storage.get("a.lease") == b"mine"
    assert sum(1 for h in seen if h["method"] == "PUT") == CONFLICT_RETRIES


def test_a_conflict_that_persists_is_a_lost_race(moto_endpoint, bucket):
    def always_busy(method: str, headers: dict[str, str]) -> AWSResponse | None:
        return _error(409, "ConditionalRequestConflict") if method == "PUT" else None

    storage, _ = _store(moto_endpoint, bucket, always_busy)
    with pytest.raises(PreconditionFailed):
        storage.put_if_absent("a.lease", b"mine")


@pytest.mark.parametrize(("status", "code"), [(412, "PreconditionFailed"), (412, "")])
def test_a_failed_precondition_is_a_lost_race_whatever_the_code(
    moto_endpoint, bucket, status, code
):
    storage, _ = _store(moto_endpoint, bucket, lambda method, _: _error(status, code))
    with pytest.raises(PreconditionFailed):
        storage.put_if_absent("a.lease", b"mine")


def test_another_409_is_not_taken_for_a_lost_race(moto_endpoint, bucket):
    storage, _ = _store(moto_endpoint, bucket, lambda method, _: _error(409, "OperationAborted"))
    with pytest.raises(TransientStorageError):
        storage.put_if_absent("a.lease", b"mine")


SERVER_NOW = datetime(2026, 12, 1, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("date", "server_time"),
    [
        ("not a date", None),  # the local clock stands in
        ("", None),
        ("Tue, 01 Dec 2026 22:00:00 -0000", SERVER_NOW),  # a naive date is UTC
        ("Tue, 01 Dec 2026 22:00:00 GMT", SERVER_NOW),
    ],
)
def test_listing_reads_the_server_clock_or_falls_back(moto_endpoint, bucket, date, server_time):
    listing = (
        b'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult><Name>b</Name>'
        b"<Prefix>inbox/</Prefix><KeyCount>1</KeyCount><IsTruncated>false</IsTruncated>"
        b"<Contents><Key>inbox/a.png</Key><LastModified>2026-12-01T21:59:00.000Z</LastModified>"
        b'<ETag>"abc"</ETag><Size>3</Size></Contents></ListBucketResult>'
    )

    def proxy(method: str, headers: dict[str, str]) -> AWSResponse | None:
        answer = {"content-type": "application/xml", **({"date": date} if date else {})}
        return _answer(200, listing, answer) if method == "GET" else None

    storage, _ = _store(moto_endpoint, bucket, proxy)
    listed = storage.list()
    assert [(o.key, o.etag) for o in listed.objects] == [("a.png", "abc")]
    if server_time is None:
        assert abs((listed.server_time - datetime.now(UTC)).total_seconds()) < 60
    else:
        assert listed.server_time == server_time
        assert (listed.server_time - listed.objects[0].last_modified).total_seconds() == 60
