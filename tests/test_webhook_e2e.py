"""End to end on loopback: boto3 upload -> moto S3 -> SNS -> HTTP -> uvicorn webhook -> MP4.

moto's server delivers S3 event notifications to SNS and SNS to HTTP subscribers for real, with
real signatures made by moto (SignatureVersion 2). The webhook verifies them with the
certificate it fetches from moto's own SNS endpoint (the injected trusted source stands in for
https://sns.us-east-1.amazonaws.com). No poller runs: the upload alone must produce the video.
"""

from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

import av
import boto3
import requests

from handlers.runtime import Runtime
from infra.cli import samples
from infra.local_dispatch import PoolDispatcher
from infra.notify.notifiers import JsonLinesNotifier
from infra.storage.bucket_events import setup_sns
from tests.helpers import Renders
from tests.webhook_support import serve, wait_for
from triggers.webhook import create_app

# moto only needs a SigV4-shaped Authorization header to route a request to its SNS backend.
SNS_ROUTING = {
    "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sns/aws4_request, "
    "SignedHeaders=host, Signature=0"
}


def moto_cert_source(moto_endpoint: str):
    """Fetch https://sns.<region>.amazonaws.com/<cert>.pem from moto's SNS instead of AWS."""

    def fetch(url: str) -> bytes:
        response = requests.get(moto_endpoint + urlsplit(url).path, headers=SNS_ROUTING, timeout=5)
        response.raise_for_status()
        return response.content

    return fetch


def test_upload_through_moto_sns_renders_without_a_poller(
    moto_endpoint, s3_client, bucket, s3_storage, make_settings, tmp_path
):
    sns = boto3.client("sns", endpoint_url=moto_endpoint, region_name="us-east-1")
    topic_arn = sns.create_topic(Name=f"dropreel-{bucket}")["TopicArn"]
    settings = make_settings(
        s3_storage, settle_seconds=0.0, webhook_sns_topic_arns=[topic_arn], workers=2
    )
    log = tmp_path / "notifications.jsonl"
    rt = Runtime(s3_storage, settings, JsonLinesNotifier(log), on_start=Renders())
    dispatcher = PoolDispatcher(rt, 2)
    fetch = moto_cert_source(moto_endpoint)
    fetched: list[str] = []

    def recording_fetch(url: str) -> bytes:
        fetched.append(url)
        return fetch(url)

    app = create_app(settings, rt, dispatcher, cert_fetcher=recording_fetch)
    try:
        with serve(app) as base_url:
            result = setup_sns(
                s3_client, sns, bucket, "inbox/", base_url, topic_name=f"dropreel-{bucket}"
            )
            assert result.arns["topic"] == topic_arn

            folder = "inbox/Zoë Park+1/take 2"
            s3_client.put_object(
                Bucket=bucket, Key=f"{folder}/portrait.png", Body=samples.portrait_png(96, 128)
            )
            s3_client.put_object(
                Bucket=bucket, Key=f"{folder}/line one.wav", Body=samples.voice_wav(seconds=0.6)
            )
            # the render runs on the webhook's pool; nothing here ticks a poller
            wait_for(lambda: log.exists() and log.read_text().strip(), timeout=60)
            dispatcher.wait()
    finally:
        dispatcher.close()

    (line,) = log.read_text().splitlines()  # one job, told once
    event = json.loads(line)
    assert event["state"] == "done", event
    assert event["job"] == "Zoë Park+1/take 2/portrait"
    data = s3_client.get_object(Bucket=bucket, Key=f"{folder}/portrait.mp4")["Body"].read()
    with av.open(io.BytesIO(data)) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        assert any(s.type == "audio" for s in container.streams)
    assert len(frames) == 15  # 0.6 s at 25 fps
    assert frames[0].shape == (128, 96, 3)
    assert fetched and all(u.startswith("https://sns.us-east-1.amazonaws.com/") for u in fetched)
