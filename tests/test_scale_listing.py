"""Listings cost what a decision reads: a folder's own files and metadata, never its subtree;
the S3 client parses listing dates with the fast parser and reads them the same as botocore."""

from __future__ import annotations

from datetime import UTC, datetime

import botocore.session
from botocore.parsers import RestXMLParser
from botocore.utils import parse_timestamp as botocore_parse

from infra.storage.listing_parser import ListingParser
from infra.storage.timestamps import parse_timestamp

NESTED = [
    "face.png",
    "face.wav",
    ".dropreel/face/status.json",
    ".dropreel/face/abc.done",
    "-early/x.png",  # sorts before '.dropreel/'
    "team/job1/prompt.json",
    "team/job1/.dropreel/prompt/v1.done",
    "team/job2/face.png",
    "zeta.png",
]


def test_a_folder_listing_never_reads_the_subtree(storage):
    for key in NESTED:
        storage.put(key, b"x")
    root = storage.list_folder("")
    assert sorted(o.key for o in root.objects) == [
        ".dropreel/face/abc.done",
        ".dropreel/face/status.json",
        "face.png",
        "face.wav",
        "zeta.png",
    ]
    team = storage.list_folder("team/job1/")
    assert sorted(o.key for o in team.objects) == [
        "team/job1/.dropreel/prompt/v1.done",
        "team/job1/prompt.json",
    ]
    assert storage.list_folder("nowhere/").objects == []


def test_a_prefix_listing_walks_only_what_it_names(storage):
    for key in NESTED:
        storage.put(key, b"x")
    assert [o.key for o in storage.list("team/job2/").objects] == ["team/job2/face.png"]
    assert [o.key for o in storage.list("team/job").objects] == [
        "team/job1/.dropreel/prompt/v1.done",
        "team/job1/prompt.json",
        "team/job2/face.png",
    ]
    assert storage.list("../").objects == []


def test_a_root_event_costs_at_most_two_list_requests_at_any_depth(s3_storage):
    for i in range(30):
        s3_storage.put(f"deep/{i}/a/b/face.png", b"x")
        s3_storage.put(f"deep/{i}/a/b/.dropreel/face/v.done", b"x")
    s3_storage.put("face.png", b"x")
    sent: list[str] = []
    s3_storage.client.meta.events.register(
        "before-send.s3", lambda request, **_: sent.append(request.method)
    )
    listing = s3_storage.list_folder("")
    assert [o.key for o in listing.objects] == ["face.png"]
    assert sent == ["GET"] and listing.pages == 1  # no .dropreel/ here: one LIST

    s3_storage.put(".dropreel/face/v.lease", b"x")
    sent.clear()
    listing = s3_storage.list_folder("")
    assert [o.key for o in listing.objects] == ["face.png", ".dropreel/face/v.lease"]
    assert sent == ["GET", "GET"] and listing.pages == 2


def test_the_fast_parser_reads_every_form_as_botocore_does():
    for value in (
        "2026-12-02T01:02:03.000Z",
        "2026-12-02T01:02:03Z",
        "2026-12-02T01:02:03.123456+02:00",
        "Wed, 02 Dec 2026 01:02:03 GMT",
        1795914123,
    ):
        assert parse_timestamp(value) == botocore_parse(value)
    assert parse_timestamp("2026-12-02T01:02:03") == datetime(2026, 12, 2, 1, 2, 3, tzinfo=UTC)


def test_the_s3_client_parses_listing_dates_with_the_fast_parser(s3_storage):
    s3_storage.put("face.png", b"x")
    listed = s3_storage.list().objects[0].last_modified
    assert listed.tzinfo is UTC  # datetime's own UTC: dateutil would have given tzutc()
    assert abs((datetime.now(UTC) - listed).total_seconds()) < 60


LISTING = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>'
    b"<Prefix>inbox/</Prefix><KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys>"
    b"<IsTruncated>false</IsTruncated>"
    b"<Contents><Key>inbox/a &amp; b.png</Key><LastModified>2026-01-01T00:00:00.000Z"
    b"</LastModified><ETag>&quot;abc&quot;</ETag><Size>12</Size>"
    b"<StorageClass>STANDARD</StorageClass></Contents>"
    b"<Contents><Key>inbox/o.png</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
    b"<ETag>&quot;abc&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm><Size>1</Size>"
    b"<Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>"
    b"<CommonPrefixes><Prefix>inbox/x/</Prefix></CommonPrefixes></ListBucketResult>"
)


def test_the_listing_parser_returns_what_botocore_returns():
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("ListObjectsV2").output_shape
    response = {"body": LISTING, "headers": {}, "status_code": 200}
    ours = ListingParser(timestamp_parser=parse_timestamp).parse(response, shape)
    theirs = RestXMLParser(timestamp_parser=parse_timestamp).parse(response, shape)
    assert ours == theirs
    assert ours["Contents"][0]["Key"] == "inbox/a & b.png" and ours["Contents"][0]["Size"] == 12
    assert ours["Contents"][1]["Owner"] == {"ID": "x"}  # anything else: the generic path
