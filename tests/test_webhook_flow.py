"""What a user sees when events arrive: the MP4 appears, once, and only for real inputs."""

from __future__ import annotations

import io
import json

import av
import pytest
from fastapi.testclient import TestClient

from handlers.runtime import Runtime
from infra.cli import samples
from infra.local_dispatch import PoolDispatcher
from infra.notify.notifiers import JsonLinesNotifier
from infra.storage.s3 import S3Storage
from tests.helpers import Renders
from tests.webhook_support import (
    SnsSigner,
    every_source,
    load_event,
    r2_headers,
    s3_record,
    sns_notification,
    wait_for,
)
from triggers.intake import Rechecks
from triggers.webhook import create_app

EB_SECRET = "eb-secret-flow"
S3_TOKEN = "s3-token-flow"
R2_SECRET = "r2-secret-flow"
FOLDER = "Alice Smith+Co/été 2026"


class CountingStorage:
    """The real S3 storage, counting LISTs (to show ignored events cost nothing) and GETs."""

    def __init__(self, inner: S3Storage) -> None:
        self.inner = inner
        self.url = inner.url
        self.lists: list[str] = []
        self.gets: list[str] = []

    def get(self, key: str) -> bytes:
        self.gets.append(key)
        return self.inner.get(key)

    def list(self, prefix: str = ""):
        self.lists.append(prefix)
        return self.inner.list(prefix)

    def list_folder(self, folder: str):
        self.lists.append(folder)
        return self.inner.list_folder(folder)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def world(s3_storage, make_settings, tmp_path):
    storage = CountingStorage(s3_storage)
    log = tmp_path / "notifications.jsonl"

    def build(**overrides):
        settings = make_settings(
            s3_storage,
            **every_source(EB_SECRET, S3_TOKEN, R2_SECRET),
            **overrides,
        )
        rt = Runtime(storage, settings, JsonLinesNotifier(log), on_start=Renders())
        dispatcher = PoolDispatcher(rt, 2)
        signer = SnsSigner()
        app = create_app(settings, rt, dispatcher, cert_fetcher=signer.fetch)
        return dispatcher, signer, app

    build.storage = storage
    build.log = log
    return build


def _drop_pair(storage, folder: str = FOLDER) -> tuple[str, str]:
    image, audio = f"{folder}/portrait é.png", f"{folder}/voice memo (1).wav"
    storage.put(image, samples.portrait_png(64, 64))
    storage.put(audio, samples.voice_wav(seconds=0.6))
    return image, audio


def _request(source: str, bucket: str, key: str, signer: SnsSigner) -> dict:
    """Keyword arguments for client.post that deliver one 'object created' event."""
    full = f"inbox/{key}"
    if source == "sns":
        body = signer.sign(sns_notification({"Records": [s3_record(bucket, full)]}))
        return {"url": "/events/sns", "json": body}
    if source == "s3":
        return {
            "url": "/events/s3",
            "json": {"Records": [s3_record(bucket, full, name="s3:ObjectCreated:Put")]},
            "headers": {"authorization": f"Bearer {S3_TOKEN}"},
        }
    if source == "eventbridge":
        event = load_event("eventbridge_object_created.json", bucket=bucket)
        event["detail"]["object"]["key"] = s3_record(bucket, full)["s3"]["object"]["key"]
        return {
            "url": "/events/eventbridge",
            "json": event,
            "headers": {"x-dropreel-secret": EB_SECRET},
        }
    message = load_event("r2_put_object.json", bucket=bucket)
    message["object"]["key"] = full
    body = json.dumps(message).encode()
    return {"url": "/events/r2", "content": body, "headers": r2_headers(R2_SECRET, body)}


def _notified(log) -> list[str]:
    """The jobs the notifier was told about, in order (one line per finished job)."""
    return [json.loads(line)["job"] for line in log.read_text().splitlines()]


def _mp4_frames(s3_client, bucket: str, key: str) -> tuple[int, bool]:
    data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
    with av.open(io.BytesIO(data)) as container:
        frames = sum(1 for _ in container.decode(video=0))
        has_audio = any(s.type == "audio" for s in container.streams)
    return frames, has_audio


@pytest.mark.parametrize("source", ["sns", "eventbridge", "s3", "r2"])
def test_event_for_the_last_file_renders_the_job(world, s3_storage, s3_client, bucket, source):
    dispatcher, signer, app = world()
    _, audio = _drop_pair(s3_storage)
    with TestClient(app) as client:
        response = client.post(**_request(source, bucket, audio, signer))
        assert response.status_code == 200, response.text
        assert response.json()["claimed"] == 1
        dispatcher.wait()
    status = json.loads(s3_storage.get(f"{FOLDER}/.dropreel/portrait é/status.json"))
    assert status["state"] == "done", status
    frames, has_audio = _mp4_frames(s3_client, bucket, f"inbox/{FOLDER}/portrait é.mp4")
    assert frames == 15 and has_audio  # 0.6 s at 25 fps
    assert world.storage.lists == [f"{FOLDER}/"]
    # the claim was the LIST and one conditional PUT: no marker read (claims.py, "kept lease")
    assert not [k for k in world.storage.gets if k.endswith((".done", ".failed", ".cancelled"))]


def test_events_that_are_not_inputs_cost_nothing(world, s3_storage, bucket, s3_client):
    _dispatcher, _signer, app = world()
    _drop_pair(s3_storage)
    ignored = [
        s3_record(bucket, f"inbox/{FOLDER}/portrait é.mp4"),
        s3_record(bucket, f"inbox/{FOLDER}/.dropreel/portrait é/status.json"),
        s3_record(bucket, f"inbox/{FOLDER}/.dropreel/portrait é/abc.lease"),
        s3_record(bucket, f"inbox/{FOLDER}/notes.txt"),
        s3_record(bucket, f"outbox/{FOLDER}/voice memo (1).wav"),
        s3_record(bucket, f"{FOLDER}/voice memo (1).wav"),
        s3_record("someone-elses-bucket", f"inbox/{FOLDER}/voice memo (1).wav"),
        s3_record(bucket, f"inbox/{FOLDER}/voice memo (1).wav", name="ObjectRemoved:Delete"),
    ]
    with TestClient(app) as client:
        response = client.post(
            "/events/s3",
            json={"Records": ignored},
            headers={"authorization": f"Bearer {S3_TOKEN}"},
        )
    assert response.json() == {
        "ok": True,
        "events": 8,
        "ignored": 8,
        "folders": 0,
        "claimed": 0,
        "settling": 0,
    }
    assert world.storage.lists == []
    listed = s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])
    assert not [o for o in listed if ".dropreel/" in o["Key"]]


def test_first_file_waits_second_file_starts(world, s3_storage, bucket):
    dispatcher, signer, app = world()
    image, audio = f"{FOLDER}/portrait é.png", f"{FOLDER}/voice memo (1).wav"
    s3_storage.put(image, samples.portrait_png(64, 64))
    with TestClient(app) as client:
        first = client.post(**_request("s3", bucket, image, signer)).json()
        assert first["claimed"] == 0 and first["settling"] == 0
        s3_storage.put(audio, samples.voice_wav(seconds=0.6))
        second = client.post(**_request("s3", bucket, audio, signer)).json()
        assert second["claimed"] == 1
        dispatcher.wait()
    assert _notified(world.log) == [f"{FOLDER}/portrait é"]


def test_replayed_and_duplicated_events_render_once(world, s3_storage, bucket):
    dispatcher, signer, app = world()
    image, audio = _drop_pair(s3_storage)
    with TestClient(app) as client:
        for source in ("sns", "s3", "eventbridge", "r2", "sns", "s3"):
            for key in (image, audio):
                assert client.post(**_request(source, bucket, key, signer)).status_code == 200
        dispatcher.wait()
        again = client.post(**_request("sns", bucket, audio, signer)).json()
    assert again["claimed"] == 0
    assert _notified(world.log) == [f"{FOLDER}/portrait é"]
    lines = world.log.read_text().splitlines()
    assert [json.loads(line)["state"] for line in lines] == ["done"]


def test_settling_job_is_rechecked_when_its_window_ends(world, s3_storage, s3_client, bucket):
    dispatcher, signer, app = world(settle_seconds=1.5)
    _, audio = _drop_pair(s3_storage)
    with TestClient(app) as client:
        response = client.post(**_request("r2", bucket, audio, signer)).json()
        assert response["claimed"] == 0 and response["settling"] == 1
        # no further event, no poller: the re-check alone claims and renders it
        wait_for(lambda: world.log.exists() and world.log.read_text(), timeout=30)
        dispatcher.wait()
    frames, _ = _mp4_frames(s3_client, bucket, f"inbox/{FOLDER}/portrait é.mp4")
    assert frames == 15
    # the event's listing, then re-checks of that folder alone (another if S3's whole-second
    # LastModified left the job settling a moment longer)
    assert world.storage.lists[:2] == [f"{FOLDER}/"] * 2
    assert set(world.storage.lists) == {f"{FOLDER}/"}


def test_unreadable_bucket_is_503_not_500(s3_client, make_settings, moto_endpoint):
    missing = S3Storage("no-such-bucket-here", "inbox/", client=s3_client)
    settings = make_settings(missing, webhook_s3_token=S3_TOKEN)
    rt = Runtime(storage=missing, settings=settings, notifier=JsonLinesNotifier("/dev/null"))
    with TestClient(create_app(settings, rt, PoolDispatcher(rt, 1))) as client:
        response = client.post(
            "/events/s3",
            json={"Records": [s3_record("no-such-bucket-here", "inbox/a/a.wav")]},
            headers={"authorization": f"Bearer {S3_TOKEN}"},
        )
    assert response.status_code == 503
    assert "error" in response.json()


def test_rechecks_keep_the_earliest_per_folder():
    ran: list[str] = []
    now = [100.0]
    rechecks = Rechecks(ran.append, clock=lambda: now[0], max_pending=2)
    try:
        assert rechecks.schedule("a/", 50)
        assert not rechecks.schedule("a/", 60)  # a later one adds nothing
        assert rechecks.schedule("a/", 10)  # an earlier one replaces it
        assert rechecks.schedule("b/", 30)
        assert not rechecks.schedule("c/", 5)  # bounded
        for moment, expected in ((115.0, ["a/"]), (135.0, ["a/", "b/"])):
            now[0] = moment
            with rechecks._cond:
                rechecks._cond.notify()
            wait_for(lambda expected=expected: ran == expected, timeout=10)
        now[0] = 200.0  # past the superseded 150.0 for "a/": it must not run again
        assert rechecks.schedule("c/", 0)  # room again once the others ran
        wait_for(lambda: ran == ["a/", "b/", "c/"], timeout=10)
    finally:
        rechecks.close()
