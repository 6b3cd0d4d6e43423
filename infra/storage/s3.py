"""S3 backend (AWS S3, Cloudflare R2, MinIO, Ceph RGW) on one boto3 client.

One typed client that exposes only the calls dropreel needs and raises dropreel's own errors.
Conditional writes use `If-None-Match: *` and `If-Match: <etag>`. The stores differ in the
details, so each choice below is the one every store accepts (docs/WEBHOOK.md, "S3 stores"):

- If-Match carries the *bare* ETag (`abc123`, not `"abc123"`). AWS S3, MinIO, R2 and moto
  compare with or without the quotes; Ceph RGW (16.2) and DigitalOcean Spaces only match the
  bare form and answer 412 to the quoted one, which would fail every heartbeat and take-back.
- A lost race is 412 `PreconditionFailed` everywhere. AWS also answers 409
  `ConditionalRequestConflict` when another conditional write on the key is in flight; nothing
  was written and AWS asks the client to retry, so it is retried a few times before it counts
  as a lost race. Other 409s (`OperationAborted`, ...) are transient errors, not races.
- Listing dates: ages are measured against the server's `Date` header, which some proxies drop
  or mangle; the local clock stands in then, and naive dates are read as UTC.

A conditional write whose reply was lost after the server applied it (a reset, a 500) is retried
by botocore, and the retry meets 412 for our own write. So a 412 that follows a retry reads the
object back: if it holds exactly the bytes we wrote, the write was ours and its ETag is returned.
Callers make that test sound by putting a fresh write id in every conditional body.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from handlers import layout
from handlers.errors import (
    AccessDenied,
    KeyTooLong,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
    TransientStorageError,
)
from handlers.storage import Listing, ObjectInfo
from infra.storage.keys import clean_key
from infra.storage.listing_parser import ListingParserFactory
from infra.storage.timestamps import parse_timestamp

_PERMISSION_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"}
_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}
_CONFLICT_CODE = "ConditionalRequestConflict"
CONFLICT_RETRIES = 3
_MISSING_BUCKET = {"NoSuchBucket"}


def make_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """A boto3 S3 client with R2-safe checksums, adaptive retries and SigV4 everywhere, whose
    responses are parsed with the fast timestamp parser."""
    config = Config(
        retries={"mode": "adaptive", "max_attempts": 8},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=10,
        read_timeout=120,
        max_pool_connections=32,
        signature_version="s3v4",  # presigned links: AWS refuses SigV2 on newer buckets and KMS
    )
    return _session().client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


@functools.cache
def _session() -> boto3.session.Session:
    """dropreel's boto3 session: botocore's own, except that responses are parsed with the fast
    timestamp parser and listings' objects read directly (`listing_parser`); other sessions
    are left alone."""
    core = botocore.session.get_session()
    factory = ListingParserFactory()
    factory.set_parser_defaults(timestamp_parser=parse_timestamp)
    core.register_component("response_parser_factory", factory)
    return boto3.session.Session(botocore_session=core)


def _is_conflict(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == _CONFLICT_CODE


def _server_date(page: dict[str, Any]) -> datetime | None:
    """The server's clock from a response's Date header; None when absent or unreadable."""
    date = page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        parsed = parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed and parsed.tzinfo is None else parsed


def _was_retried(err: ClientError | BotoCoreError) -> bool:
    """True when botocore sent the request more than once (an earlier try may have applied)."""
    meta = getattr(err, "response", {}).get("ResponseMetadata", {})
    return meta.get("RetryAttempts", 0) > 0


class S3Storage:
    """The watch root `s3://bucket/prefix` as a Storage. Keys are relative to the prefix."""

    def __init__(self, bucket: str, prefix: str = "", client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client or make_client()
        self.url = f"s3://{bucket}/{self.prefix}"

    def _full(self, key: str) -> str:
        return self.prefix + clean_key(key, self.prefix)

    def check_key(self, key: str) -> None:
        self._full(key)

    def describe(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def _translate(self, err: Exception, key: str) -> StorageError:
        where = self.describe(key)
        if isinstance(err, ClientError):
            code = str(err.response.get("Error", {}).get("Code", ""))
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if code == "KeyTooLongError":
                return KeyTooLong(f"{where} is longer than the store allows ({code})")
            if status == 412 or code == "PreconditionFailed" or _is_conflict(err):
                return PreconditionFailed(f"{where} changed or already exists ({code})")
            if code in _MISSING_CODES or status == 404:
                if code in _MISSING_BUCKET:
                    return AccessDenied(
                        f"bucket {self.bucket!r} does not exist: create it or fix the watch root"
                    )
                return ObjectNotFound(f"{where} does not exist")
            if code in _PERMISSION_CODES or status == 403:
                return AccessDenied(
                    f"access to {where} was denied ({code}): check the credentials and the "
                    "bucket policy"
                )
            return TransientStorageError(f"S3 error on {where}: {code or status}")
        return TransientStorageError(f"could not reach S3 for {where}: {type(err).__name__}")

    def iter_pages(self, prefix: str = "") -> Iterator[Listing]:
        for objects, server_time, _ in self._pages(prefix):
            yield Listing(objects, server_time or datetime.now(UTC), 1)

    def _pages(
        self, prefix: str, delimiter: str = ""
    ) -> Iterator[tuple[list[ObjectInfo], datetime | None, list[str]]]:
        """Each page's objects, server clock and common prefixes (relative to the root)."""
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix)
        query: dict[str, str] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if delimiter:
            query["Delimiter"] = delimiter
        try:
            for page in paginator.paginate(**query):
                objects = [
                    ObjectInfo(
                        key=item["Key"][strip:],
                        size=item["Size"],
                        etag=item["ETag"].strip('"'),
                        last_modified=item["LastModified"],
                    )
                    for item in page.get("Contents", ())
                ]
                folders = [p["Prefix"][strip:] for p in page.get("CommonPrefixes", ())]
                yield objects, _server_date(page), folders
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, prefix) from err

    def _listing(self, prefix: str, delimiter: str = "") -> tuple[Listing, list[str]]:
        """The whole listing of `prefix`, and the common prefixes `delimiter` made."""
        objects: list[ObjectInfo] = []
        folders: list[str] = []
        pages = 0
        server_time = None
        started = time.monotonic()
        for page, page_time, page_folders in self._pages(prefix, delimiter):
            objects.extend(page)
            folders.extend(page_folders)
            pages += 1
            server_time = server_time or page_time
        return Listing(objects, server_time or datetime.now(UTC), pages, started), folders

    def list(self, prefix: str = "") -> Listing:
        return self._listing(prefix)[0]

    def list_folder(self, folder: str) -> Listing:
        """The folder's own keys (with a delimiter); then, only if that listing shows the
        folder has a `.dropreel/` (no job of it ever claimed: none), its metadata."""
        own, subfolders = self._listing(folder, "/")
        meta_root = layout.meta_root(folder)
        if meta_root not in subfolders:
            return own
        meta, _ = self._listing(meta_root)
        return Listing(
            own.objects + meta.objects, own.server_time, own.pages + meta.pages, own.started
        )

    def get(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))["Body"].read()
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from err

    def download(self, key: str, dest: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._full(key), str(dest))
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from err

    def _put(self, key: str, data: bytes | Path, content_type: str | None, **extra: str) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._full(key), **extra}
        if content_type:
            args["ContentType"] = content_type
        try:
            if isinstance(data, Path):
                with data.open("rb") as body:
                    response = self.client.put_object(Body=body, **args)
            else:
                response = self._put_bytes(data, args)
        except (ClientError, BotoCoreError) as err:
            error = self._translate(err, key)
            if isinstance(error, PreconditionFailed) and extra and _was_retried(err):
                etag = self._etag_if_holds(key, data)
                if etag is not None:
                    return etag
            raise error from err
        return response["ETag"].strip('"')

    def _put_bytes(self, data: bytes, args: dict[str, Any]) -> dict[str, Any]:
        """PutObject, sent again while AWS says another conditional write is in flight (409)."""
        attempt = 0
        while True:
            try:
                return self.client.put_object(Body=data, **args)
            except ClientError as err:
                attempt += 1
                if not _is_conflict(err) or attempt >= CONFLICT_RETRIES:
                    raise
                time.sleep(0.05 * 2**attempt)

    def _etag_if_holds(self, key: str, data: bytes | Path) -> str | None:
        """The object's ETag if it holds exactly `data` (our own applied write), else None."""
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
            body = got["Body"].read()
        except (ClientError, BotoCoreError):
            return None
        return got["ETag"].strip('"') if body == data else None

    def put(self, key: str, data: bytes | Path, content_type: str | None = None) -> str:
        return self._put(key, data, content_type)

    def put_if_absent(self, key: str, data: bytes, content_type: str | None = None) -> str:
        return self._put(key, data, content_type, IfNoneMatch="*")

    def put_if_match(
        self, key: str, data: bytes, etag: str, content_type: str | None = None
    ) -> str:
        try:
            return self._put(key, data, content_type, IfMatch=etag.strip('"'))
        except ObjectNotFound as err:  # S3 answers 404 when the key vanished: same race lost
            raise PreconditionFailed(f"{self.describe(key)} no longer exists") from err

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._full(key))
        except (ClientError, BotoCoreError) as err:
            raise self._translate(err, key) from err

    def presigned_url(self, key: str, expires_seconds: int) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._full(key)},
            ExpiresIn=expires_seconds,
        )
