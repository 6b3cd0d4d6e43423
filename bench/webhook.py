"""Webhook latency: from an event POST to the job's claim being written, against the floor.

Everything runs on loopback: moto's S3 server, the webhook app under uvicorn, one HTTP client.
For each event a fresh folder holds a ready image + audio pair; the clock starts when the client
sends the POST and stops when the claim (the conditional PUT of `<version>.lease`) has returned,
which is the moment the app hands the job to its dispatcher (recorded there; no render runs, so
rendering does not compete for the CPU). The floor is what no trigger can beat: one LIST of the
folder plus one conditional PUT (If-None-Match: *), done directly with the same boto3 client
settings, measured in the same run, interleaved with the webhook samples.

    python bench/webhook.py [--events 300] [--route s3|sns]

Prints a table, then a JSON line: {"events", "p50_ms", "p99_ms", "floor_p50_ms", "p50_ratio", ...}.
Goal: p50_ratio <= 1.5.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

for _var, _value in {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_var, _value)

import httpx  # noqa: E402

from config.settings import Settings  # noqa: E402
from handlers.runtime import Runtime  # noqa: E402
from infra.cli import samples  # noqa: E402
from infra.notify.notifiers import NullNotifier  # noqa: E402
from infra.storage.s3 import S3Storage, make_client  # noqa: E402
from tests.webhook_support import (  # noqa: E402
    TOPIC_ARN,
    SnsSigner,
    s3_record,
    serve,
    sns_notification,
)
from triggers.webhook import create_app  # noqa: E402

TOKEN = "bench-token"


class ClaimClock:
    """Dispatcher that notes when each claim has been written (dispatch follows the PUT)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    def dispatch(self, job, lease) -> None:
        now = time.perf_counter()
        with self.lock:
            self.at[job.folder] = now


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--route", choices=("s3", "sns"), default="s3")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        return run(endpoint, args)
    finally:
        server.stop()


def run(endpoint: str, args: argparse.Namespace) -> int:
    client = make_client(endpoint, "us-east-1")
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    storage = S3Storage(bucket, "inbox/", client=client)
    settings = Settings(
        _env_file=None,
        watch_root=storage.url,
        endpoint_url=endpoint,
        region="us-east-1",
        settle_seconds=0.0,
        notifier="none",
        webhook_s3_token=TOKEN,
        webhook_sns_topic_arns=[TOPIC_ARN],
    )
    rt = Runtime(storage=storage, settings=settings, notifier=NullNotifier())
    clock = ClaimClock()
    signer = SnsSigner()
    app = create_app(settings, rt, clock, cert_fetcher=signer.fetch)

    total = args.warmup + args.events
    image, audio = samples.portrait_png(64, 64), samples.voice_wav(seconds=0.6)
    for i in range(total):
        for side in ("hook", "floor"):
            storage.put(f"{side}/{i:05d}/face.png", image)
            storage.put(f"{side}/{i:05d}/voice.wav", audio)

    webhook_ms: list[float] = []
    post_ms: list[float] = []
    floor_ms: list[float] = []
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as http:
        for i in range(total):
            # floor: one LIST of the folder + one conditional PUT, boto3 directly
            folder = f"inbox/floor/{i:05d}/"
            started = time.perf_counter()
            client.list_objects_v2(Bucket=bucket, Prefix=folder)
            client.put_object(
                Bucket=bucket,
                Key=f"{folder}.dropreel/face/0000000000000000.lease",
                Body=b'{"attempt": 1}',
                ContentType="application/json",
                IfNoneMatch="*",
            )
            floor = time.perf_counter() - started

            key = f"hook/{i:05d}/voice.wav"
            record = s3_record(bucket, f"inbox/{key}")
            if args.route == "sns":
                body = json.dumps(signer.sign(sns_notification({"Records": [record]})))
                request = {"url": "/events/sns", "content": body}
            else:
                request = {
                    "url": "/events/s3",
                    "content": json.dumps({"Records": [record]}),
                    "headers": {"authorization": f"Bearer {TOKEN}"},
                }
            started = time.perf_counter()
            response = http.post(**request)
            answered = time.perf_counter()
            if response.status_code != 200 or response.json().get("claimed") != 1:
                raise SystemExit(
                    f"event {i} was not claimed: {response.status_code} {response.text}"
                )
            claimed = clock.at[f"hook/{i:05d}/"]
            if i >= args.warmup:
                floor_ms.append(floor * 1000)
                webhook_ms.append((claimed - started) * 1000)
                post_ms.append((answered - started) * 1000)

    p50, p99 = statistics.median(webhook_ms), percentile(webhook_ms, 99)
    floor_p50, floor_p99 = statistics.median(floor_ms), percentile(floor_ms, 99)
    print(f"route /events/{args.route}, {len(webhook_ms)} events (+{args.warmup} warm-up)")
    print(f"{'':28}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{'event POST -> claim written':28}{p50:>10.2f}{p99:>10.2f}")
    print(f"{'event POST -> 200 received':28}{statistics.median(post_ms):>10.2f}"
          f"{percentile(post_ms, 99):>10.2f}")  # fmt: skip
    print(f"{'floor: LIST + cond. PUT':28}{floor_p50:>10.2f}{floor_p99:>10.2f}")
    ratio = p50 / floor_p50
    print(f"p50 ratio {ratio:.2f} (goal <= 1.5): {'met' if ratio <= 1.5 else 'NOT met'}")
    print(
        json.dumps(
            {
                "events": len(webhook_ms),
                "route": args.route,
                "p50_ms": round(p50, 2),
                "p99_ms": round(p99, 2),
                "floor_p50_ms": round(floor_p50, 2),
                "floor_p99_ms": round(floor_p99, 2),
                "post_p50_ms": round(statistics.median(post_ms), 2),
                "p50_ratio": round(ratio, 2),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
