"""Both storage backends honour the same contract, over real HTTP for S3."""

from __future__ import annotations

import urllib.request

import pytest

from handlers.errors import ObjectNotFound, OutsideWatchRoot, PreconditionFailed
from infra.storage import open_storage
from infra.storage.s3 import S3Storage

ODD_KEYS = ["a b/c d.png", "plus+sign/x+y.wav", "ünï/cödé ✓.json", "deep/1/2/3/4/5/file.png"]


def test_put_get_list_roundtrip(storage):
    for key in ODD_KEYS:
        storage.put(key, key.encode())
    listing = storage.list()
    assert sorted(o.key for o in listing.objects) == sorted(ODD_KEYS)
    for key in ODD_KEYS:
        assert storage.get(key) == key.encode()
    assert [o.key for o in storage.list("deep/").objects] == ["deep/1/2/3/4/5/file.png"]


def test_put_if_absent_has_one_winner(storage):
    storage.put_if_absent("j/.dropreel/j/v.lease", b"1")
    with pytest.raises(PreconditionFailed):
        storage.put_if_absent("j/.dropreel/j/v.lease", b"2")
    assert storage.get("j/.dropreel/j/v.lease") == b"1"


def test_put_if_match_is_compare_and_swap(storage):
    etag = storage.put_if_absent("k.lease", b"1")
    listed = {o.key: o.etag for o in storage.list().objects}["k.lease"]
    assert listed == etag
    new = storage.put_if_match("k.lease", b"2", etag)
    with pytest.raises(PreconditionFailed):
        storage.put_if_match("k.lease", b"3", etag)  # stale etag loses
    storage.put_if_match("k.lease", b"4", new)
    assert storage.get("k.lease") == b"4"


def test_put_if_match_on_missing_key_fails(storage):
    with pytest.raises(PreconditionFailed):
        storage.put_if_match("gone.lease", b"1", "0123")


@pytest.mark.parametrize("key", ["../escape.png", "a/../../b.png", "/abs.png", "a//b.png", ""])
def test_keys_that_could_escape_are_refused(storage, key):
    with pytest.raises(OutsideWatchRoot):
        storage.put(key, b"x")


def test_missing_key_is_typed(storage):
    with pytest.raises(ObjectNotFound):
        storage.get("nope.png")


def test_s3_listing_paginates_and_stays_under_prefix(s3_client, bucket):
    s3_client.put_object(Bucket=bucket, Key="outside/x.png", Body=b"x")
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    for i in range(1005):
        s3_client.put_object(Bucket=bucket, Key=f"inbox/f/{i:04d}.png", Body=b"x")
    listing = storage.list()
    assert listing.pages == 2
    assert len(listing.objects) == 1005
    assert all(o.key.startswith("f/") for o in listing.objects)


def test_presigned_url_serves_the_object(s3_storage):
    s3_storage.put("v/video.mp4", b"mp4 bytes", "video/mp4")
    url = s3_storage.presigned_url("v/video.mp4", 60)
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"mp4 bytes"


def test_local_writes_are_atomic_and_temp_files_are_invisible(local_storage, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 3_000_000)
    local_storage.put("out/video.mp4", big)
    keys = [o.key for o in local_storage.list().objects]
    assert keys == ["out/video.mp4"]
    assert not any(".dropreel-tmp" in k for k in keys)


def test_open_storage_urls(tmp_path, s3_client, bucket):
    local = open_storage((tmp_path / "in").as_uri())
    assert local.url.startswith("file://")
    s3 = open_storage(f"s3://{bucket}/media/inbox", client=s3_client)
    assert s3.url == f"s3://{bucket}/media/inbox/"
    with pytest.raises(ValueError, match="file:///path or s3://bucket/prefix"):
        open_storage("ftp://x/y")
