"""Poller tick cost vs a bare paginated listing of the same prefix, on moto's S3 server.

Claim: a tick decides from the listing alone, so it costs the LIST pages and nothing more for
finished jobs. Prints a JSON object on the last line:
  keys, finished_jobs, pending_keys, tick_s, bare_list_s, ratio, tick_requests, list_pages.
Run: python bench/poller.py [--finished 3800] [--pending 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from config.settings import Settings
from handlers.jobs import Job, Phase, discover
from handlers.runtime import Runtime
from handlers.storage import ObjectInfo
from infra.local_dispatch import InlineDispatcher
from infra.notify.notifiers import NullNotifier
from infra.storage.s3 import S3Storage, make_client
from triggers.poller import tick

BUCKET = "bench-poller"
PREFIX = "inbox/"


def populate(client, finished: int, pending: int) -> int:
    """Finished prompt.json jobs as a real run leaves them, plus images waiting for audio."""
    keys: list[tuple[str, bytes]] = []
    for i in range(finished):
        folder = f"team{i % 40}/job{i:05d}/"
        body = json.dumps({"prompt": f"scene {i}"}).encode()
        # The version comes from the ETag S3 assigns (the MD5 of the body for a simple PUT).
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        prompt = ObjectInfo(folder + "prompt.json", len(body), etag, datetime.now(UTC))
        version = Job(folder=folder, stem="prompt", prompt=prompt).version
        meta = f"{folder}.dropreel/prompt/"
        keys += [
            (folder + "prompt.json", body),
            (folder + "prompt.mp4", b"mp4"),
            (meta + "status.json", b"{}"),
            (meta + "poster.jpg", b"jpg"),
            (f"{meta}{version}.done", b"{}"),
        ]
    keys += [(f"waiting/p{i:05d}/face.png", b"png") for i in range(pending)]

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=BUCKET, Key=PREFIX + item[0], Body=item[1])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))
    return len(keys)


class RequestCounter:
    def __init__(self, client) -> None:
        self.count = 0
        client.meta.events.register("before-send.s3", self._hit)

    def _hit(self, **_) -> None:
        self.count += 1


def bare_list(client) -> tuple[int, int]:
    pages = keys = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX):
        pages += 1
        keys += len(page.get("Contents", ()))
    return pages, keys


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--finished", type=int, default=3800)
    parser.add_argument("--pending", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_client(endpoint, "us-east-1")
        client.create_bucket(Bucket=BUCKET)
        total = populate(client, args.finished, args.pending)
        print(f"populated {total} keys", file=sys.stderr)

        settings = Settings(
            _env_file=None,
            watch_root=f"s3://{BUCKET}/{PREFIX}",
            endpoint_url=endpoint,
            settle_seconds=0,
            notifier="none",
        )
        storage = S3Storage(BUCKET, PREFIX, client=client)
        rt = Runtime(storage=storage, settings=settings, notifier=NullNotifier())
        dispatcher = InlineDispatcher(rt)
        counter = RequestCounter(client)

        tick_times, list_times = [], []
        pages = keys = 0
        for _ in range(args.repeats):  # alternate to share the machine's noise fairly
            start = time.perf_counter()
            pages, keys = bare_list(client)
            list_times.append(time.perf_counter() - start)
            before = counter.count
            start = time.perf_counter()
            report = tick(rt, dispatcher)
            tick_times.append(time.perf_counter() - start)
            tick_requests = counter.count - before
        listing = storage.list()
        jobs = discover(listing.objects, listing.server_time, 0, 60)
        done = sum(1 for j in jobs if j.phase is Phase.DONE)
        assert report.claimed == [] and done == args.finished, (report, done)
        tick_s, list_s = statistics.median(tick_times), statistics.median(list_times)
        print(
            json.dumps(
                {
                    "keys": keys,
                    "finished_jobs": done,
                    "pending_keys": args.pending,
                    "tick_s": round(tick_s, 4),
                    "bare_list_s": round(list_s, 4),
                    "ratio": round(tick_s / list_s, 3),
                    "tick_requests": tick_requests,
                    "list_pages": pages,
                }
            )
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
