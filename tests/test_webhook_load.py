"""Load: 500 events for 100 jobs, each sent three times, 32 at a time, over all four routes.

Exactly one render, one done marker and one notification per job; no response is a 5xx (nor
any other refusal: every request here is legitimate).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx

from handlers.runtime import Runtime
from infra.cli import samples
from infra.local_dispatch import PoolDispatcher
from infra.notify.notifiers import JsonLinesNotifier
from tests.helpers import Renders, started
from tests.webhook_support import (
    SnsSigner,
    every_source,
    r2_headers,
    s3_record,
    serve,
    sns_notification,
)
from triggers.webhook import create_app

JOBS = 100
EVENTS_PER_JOB = 5
COPIES = 3
CONCURRENCY = 32
EB_SECRET = "eb-load"
S3_TOKEN = "s3-load"
R2_SECRET = "r2-load"


def _request(n: int, bucket: str, key: str, signer: SnsSigner) -> dict:
    full = f"inbox/{key}"
    route = ("sns", "eventbridge", "s3", "r2")[n % 4]
    record = s3_record(bucket, full)
    if route == "sns":
        body = signer.sign(sns_notification({"Records": [record]}, MessageId=f"msg-{n}"))
        return {"url": "/events/sns", "content": json.dumps(body).encode()}
    if route == "s3":
        return {
            "url": "/events/s3",
            "content": json.dumps({"Records": [record]}).encode(),
            "headers": {"authorization": f"Bearer {S3_TOKEN}"},
        }
    if route == "eventbridge":
        event = {
            "version": "0",
            "id": f"id-{n}",
            "detail-type": "Object Created",
            "source": "aws.s3",
            "time": "2026-11-20T10:00:00Z",
            "detail": {
                "bucket": {"name": bucket},
                "object": {"key": record["s3"]["object"]["key"], "size": 1},
                "reason": "PutObject",
            },
        }
        return {
            "url": "/events/eventbridge",
            "content": json.dumps(event).encode(),
            "headers": {"x-dropreel-secret": EB_SECRET},
        }
    body = json.dumps(
        {"account": "a", "action": "PutObject", "bucket": bucket, "object": {"key": full}}
    ).encode()
    return {"url": "/events/r2", "content": body, "headers": r2_headers(R2_SECRET, body)}


def test_500_events_for_100_jobs_three_times_each(
    s3_storage, s3_client, bucket, make_settings, tmp_path
):
    settings = make_settings(
        s3_storage,
        settle_seconds=0.0,
        **every_source(EB_SECRET, S3_TOKEN, R2_SECRET),
    )
    log = tmp_path / "notifications.jsonl"
    rt = Runtime(s3_storage, settings, JsonLinesNotifier(log), on_start=Renders())
    dispatcher = PoolDispatcher(rt, 4)
    signer = SnsSigner()
    image, audio = samples.portrait_png(64, 64), samples.voice_wav(seconds=0.6)

    keys: list[str] = []
    for j in range(JOBS):
        folder = f"load/job {j:03d}+x"
        s3_storage.put(f"{folder}/face.png", image)
        s3_storage.put(f"{folder}/voice.wav", audio)
        keys += [
            f"{folder}/face.png",
            f"{folder}/voice.wav",
            f"{folder}/face.png",  # S3 delivers at least once: a duplicate of the first event
            f"{folder}/face.mp4",  # our own output: ignored
            f"{folder}/.dropreel/face/status.json",  # our own metadata: ignored
        ]
    assert len(keys) == JOBS * EVENTS_PER_JOB == 500
    requests = [_request(n, bucket, key, signer) for n, key in enumerate(keys)] * COPIES
    random.Random(4).shuffle(requests)

    app = create_app(settings, rt, dispatcher, cert_fetcher=signer.fetch)
    try:
        with serve(app) as base_url:
            limits = httpx.Limits(max_connections=CONCURRENCY)
            with httpx.Client(base_url=base_url, limits=limits, timeout=60) as client:

                def send(kwargs: dict) -> tuple[int, dict]:
                    response = client.post(**kwargs)
                    return response.status_code, response.json()

                with ThreadPoolExecutor(CONCURRENCY) as pool:
                    results = list(pool.map(send, requests))
            dispatcher.wait()
    finally:
        dispatcher.close()

    statuses = Counter(status for status, _ in results)
    assert statuses == {200: 1500}, statuses
    assert sum(body["claimed"] for _, body in results) == JOBS
    assert sum(body["ignored"] for _, body in results) == JOBS * 2 * COPIES

    renders = Counter(started(rt))
    assert len(renders) == JOBS and set(renders.values()) == {1}
    notified = Counter(json.loads(line)["job"] for line in log.read_text().splitlines())
    assert len(notified) == JOBS and set(notified.values()) == {1}

    listed = [
        o["Key"]
        for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in page.get("Contents", [])
    ]
    assert sum(k.endswith(".done") for k in listed) == JOBS
    assert sum(k.endswith(".mp4") for k in listed) == JOBS
    assert not [k for k in listed if k.endswith(".failed")]
