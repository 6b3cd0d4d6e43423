"""Shared fixtures: moto's S3 server over real HTTP on loopback, fresh buckets, settings."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator

import pytest

from config.settings import Settings
from infra.storage.local import LocalStorage
from infra.storage.s3 import S3Storage, make_client

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
    os.environ.pop(_var, None)
for _var in [v for v in os.environ if v.startswith("DROPREEL_")]:
    os.environ.pop(_var)
logging.getLogger("werkzeug").setLevel(logging.ERROR)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server in server mode on 127.0.0.1, a free port; real HTTP for boto3."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_client(moto_endpoint: str):
    return make_client(moto_endpoint, "us-east-1")


@pytest.fixture
def bucket(s3_client) -> str:
    name = f"t-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_storage(s3_client, bucket) -> S3Storage:
    return S3Storage(bucket, "inbox/", client=s3_client)


@pytest.fixture
def local_storage(tmp_path) -> LocalStorage:
    return LocalStorage(tmp_path / "inbox")


@pytest.fixture(params=["s3", "local"])
def storage(request, moto_endpoint):
    """The same behaviour test runs on both backends."""
    if request.param == "s3":
        return request.getfixturevalue("s3_storage")
    return request.getfixturevalue("local_storage")


@pytest.fixture
def make_settings(moto_endpoint: str) -> Callable[..., Settings]:
    def build(storage=None, **overrides) -> Settings:
        values = {
            "watch_root": getattr(storage, "url", "file:///tmp/unused"),
            "endpoint_url": moto_endpoint,
            "region": "us-east-1",
            "settle_seconds": 0.0,
            "lease_seconds": 30.0,
            "max_attempts": 3,
            "notifier": "none",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return build
