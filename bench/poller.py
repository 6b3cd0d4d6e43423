"""Poller cost: a fast tick, a sweep and a webhook event at the watch root, against today's
tick (one whole listing, dateutil timestamps) and a bare paginated listing, in the same run.

Up to 100,000 keys the bucket is moto's S3 server (real requests, for correctness); past that,
`bench/fake_s3.py`, which makes a bucket's history up on the fly in constant time per page. The
history is finished prompt.json jobs as a real run leaves them (`fake_s3.NAMES`, checked
against one job the bench renders with the preview engine first); beside it,
`--active` running jobs (claimed, lease fresh, as a webhook leaves them) and, on moto, the
`--pending` images that wait for their audio. Prints a JSON object on the last line:

  keys, finished_jobs, active_jobs, backend,
  keys_per_finished_job                    the keys one real job leaves, its input included
  fast_tick_requests, fast_tick_cpu_s      a tick with nothing due (what most ticks are)
  due_tick_requests, due_tick_cpu_s        a tick where every active folder is due for a look
  sweep_requests, sweep_cpu_s, sweep_peak_mb
  old_tick_requests, old_tick_cpu_s, old_tick_peak_mb, sweep_vs_old_cpu
  webhook_root_requests                    an event for a file at the watch root
  tick_s, bare_list_s, ratio, tick_requests, list_pages    (moto only: a tick that sweeps,
                                           vs a bare listing of the same prefix, as before)

    python bench/poller.py                      # 20,000 keys on moto (3,800 jobs + 1,000 images)
    python bench/poller.py --keys 1000000 --active 20
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")

import boto3

import bench.fake_s3 as fake_s3
from config.settings import Settings
from handlers import claims
from handlers.active import entry_key, read_index
from handlers.claims import LeaseRecord
from handlers.jobs import Job
from handlers.layout import INDEX_DIR, bare_etag
from handlers.reconcile import reconcile
from handlers.runtime import Runtime
from handlers.storage import ObjectInfo
from infra.local_dispatch import InlineDispatcher
from infra.notify.notifiers import NullNotifier
from infra.storage.s3 import S3Storage, make_client
from triggers.events.model import ObjectEvent
from triggers.intake import Intake
from triggers.poller import fast_tick, tick

BUCKET = "bench-poller"
PREFIX = "inbox/"
REAL_PREFIX = "real/"  # the one job the bench renders, to count the keys a finished job leaves
MOTO_LIMIT = 100_000


class Holds:
    """A dispatcher that keeps nothing and renders nothing (the bench measures deciding)."""

    def dispatch(self, job, lease) -> None:
        pass


class RequestCounter:
    def __init__(self, client) -> None:
        self.count = 0
        client.meta.events.register("before-send.s3", self._hit)

    def _hit(self, **_) -> None:
        self.count += 1


def old_client(endpoint: str):
    """Today's client: the same settings, botocore's own (dateutil) timestamp parser."""
    fast = make_client(endpoint, "us-east-1")
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=fast.meta.config
    )


def populate_moto(client, finished: int, pending: int) -> None:
    """Finished prompt.json jobs as a real run leaves them, plus images waiting for audio."""
    keys: list[tuple[str, bytes]] = []
    for i in range(finished):
        folder = f"team{i % 40}/job{i:05d}/"
        body = json.dumps({"prompt": f"scene {i}"}).encode()
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        prompt = ObjectInfo(folder + "prompt.json", len(body), etag, datetime.now(UTC))
        version = Job(folder=folder, stem="prompt", prompt=prompt).version
        for name in fake_s3.NAMES:
            key = folder + name.format(v=version, e=fake_s3.MP4_ETAG)
            keys.append((key, body if name == "prompt.json" else b"{}"))
    keys += [(f"waiting/p{i:05d}/face.png", b"png") for i in range(pending)]

    def put(item: tuple[str, bytes]) -> None:
        client.put_object(Bucket=BUCKET, Key=PREFIX + item[0], Body=item[1])

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(put, keys))


def add_running_jobs(storage: S3Storage, count: int) -> list[str]:
    """Jobs in flight: inputs plus a fresh lease each, as a claim leaves them."""
    folders = []
    for i in range(count):
        folder = f"active/a{i:03d}/"
        png = storage.put(folder + "face.png", b"png")
        wav = storage.put(folder + "face.wav", b"wav")
        now = datetime.now(UTC)
        job = Job(
            folder=folder,
            stem="face",
            image=ObjectInfo(folder + "face.png", 3, png, now),
            audio=ObjectInfo(folder + "face.wav", 3, wav, now),
        )
        record = LeaseRecord(attempt=1, version=job.version, worker="bench")
        storage.put(f"{folder}.dropreel/face/{job.version}.lease", record.to_bytes())
        folders.append(folder)
    return folders


def measure(fn, counter: RequestCounter) -> tuple[float, int, float, object]:
    """(CPU seconds of this thread, requests, growth of the peak RSS in MB, result)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = counter.count
    cpu = time.thread_time()
    result = fn()
    cpu = time.thread_time() - cpu
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
    return cpu, counter.count - before, grown, result


def bare_list(client, prefix: str) -> int:
    pages = 0
    for _ in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        pages += 1
    return pages


def bench_runtime(endpoint: str, prefix: str = PREFIX, **settings) -> Runtime:
    """A runtime on the bench bucket: no settle window, long leases, no notifications."""
    storage = S3Storage(BUCKET, prefix, client=make_client(endpoint, "us-east-1"))
    values = {"settle_seconds": 0, "lease_seconds": 600, "notifier": "none", **settings}
    chosen = Settings(_env_file=None, watch_root=storage.url, endpoint_url=endpoint, **values)
    return Runtime(storage=storage, settings=chosen, notifier=NullNotifier())


def keys_of_a_finished_job(endpoint: str) -> list[str]:
    """The keys one real prompt.json job leaves (preview engine, rendered inline, under a
    watch root of its own) once its folder was looked at again; checked against the history's
    jobs, so the history is what a real run leaves."""
    rt = bench_runtime(endpoint, REAL_PREFIX, sweep_seconds=3600)
    storage = rt.storage
    storage.put("job/prompt.json", json.dumps({"prompt": "scene"}).encode())
    listed: dict[str, ObjectInfo] = {}
    for _ in range(50):  # the fake server's clock has whole seconds: the job may settle first
        tick(rt, InlineDispatcher(rt), full=True)
        if "job/prompt.mp4" in listed:
            break  # that was the folder's next look after the job finished
        listed = {o.key: o for o in storage.list("job/").objects}
        time.sleep(0.1)
    # The history's jobs are older than KEEP_DECIDED_LEASE_SECONDS: their kept lease went at a
    # look 10 minutes after the marker. Looks with that time taken as passed (the server's
    # clock, which dates the marker, may have whole seconds: a look may come within its second).
    keep, fresh = claims.KEEP_DECIDED_LEASE_SECONDS, claims.FRESH_LISTING_SECONDS
    claims.KEEP_DECIDED_LEASE_SECONDS, claims.FRESH_LISTING_SECONDS = 0.0, -1.0
    try:
        for _ in range(30):
            tick(rt, InlineDispatcher(rt), full=True)
            if not [o for o in storage.list("job/").objects if o.key.endswith(".lease")]:
                break
            time.sleep(0.2)
    finally:
        claims.KEEP_DECIDED_LEASE_SECONDS, claims.FRESH_LISTING_SECONDS = keep, fresh
    keys = sorted(o.key for o in storage.list("").objects if not o.key.startswith(INDEX_DIR))
    version = Job(folder="job/", stem="prompt", prompt=listed["job/prompt.json"]).version
    mp4 = bare_etag(listed["job/prompt.mp4"].etag)
    shape = sorted("job/" + name.format(v=version, e=mp4) for name in fake_s3.NAMES)
    assert keys == shape, f"the history's jobs are not what a real run leaves: {keys}"
    return keys


def run(endpoint: str, args: argparse.Namespace, finished: int, backend: str) -> dict:
    out: dict = {"finished_jobs": finished, "active_jobs": args.active, "backend": backend}
    rt = bench_runtime(endpoint, sweep_seconds=3600)
    storage, settings, client = rt.storage, rt.settings, rt.storage.client
    active = add_running_jobs(storage, args.active)
    counter = RequestCounter(client)

    # The sweep (the first tick of a poller: no sweep marker yet), streamed.
    cpu, requests, peak, report = measure(lambda: tick(rt, Holds()), counter)
    assert report.states["running"] == args.active and report.states["done"] == finished, report
    out.update(sweep_requests=requests, sweep_cpu_s=round(cpu, 3), sweep_peak_mb=round(peak, 1))

    # Fast ticks: nothing due (leases fresh), then every active folder due for a look.
    fast = [measure(lambda: tick(rt, Holds()), counter) for _ in range(args.repeats)]
    out.update(
        fast_tick_requests=fast[-1][1],
        fast_tick_cpu_s=round(statistics.median(f[0] for f in fast), 4),
    )
    for folder in active:
        storage.put(entry_key(folder, datetime(2000, 1, 1, tzinfo=UTC)), b"")
    index = read_index(storage)
    cpu, requests, _, report = measure(lambda: fast_tick(rt, Holds(), index), counter)
    assert report.states["running"] == args.active, report
    out.update(due_tick_requests=requests + index.pages, due_tick_cpu_s=round(cpu, 4))

    # A webhook event for a file at the watch root (an image waiting for its audio).
    storage.put("root.png", b"png")
    intake = Intake(rt, Holds())
    event = ObjectEvent(BUCKET, f"{PREFIX}root.png", True)
    _, requests, _, _ = measure(lambda: intake.accept([event]), counter)
    intake.close()
    out["webhook_root_requests"] = requests

    # Today's tick: one whole listing with dateutil timestamps, decided in memory.
    old = S3Storage(BUCKET, PREFIX, client=old_client(endpoint))
    old_rt = Runtime(storage=old, settings=settings, notifier=NullNotifier())
    old_counter = RequestCounter(old.client)
    cpu, requests, peak, report = measure(
        lambda: reconcile(old_rt, old.list(), Holds()), old_counter
    )
    assert report.states["done"] == finished, report
    out.update(
        old_tick_requests=requests,
        old_tick_cpu_s=round(cpu, 3),
        old_tick_peak_mb=round(peak, 1),
        sweep_vs_old_cpu=round(out["sweep_cpu_s"] / cpu, 3),
    )
    # Last, so that its render does not raise the peak RSS the measures above compare against.
    out["keys_per_finished_job"] = len(keys_of_a_finished_job(endpoint))
    pending = args.pending if backend == "moto" else 0
    out["keys"] = finished * len(fake_s3.NAMES) + args.active * 3 + pending
    return out


def ratio_fields(endpoint: str, args: argparse.Namespace) -> dict:
    """The original claim, unchanged: a tick that sweeps (no webhook: every tick) costs the LIST
    pages and nothing more for finished jobs, vs a bare listing of the same prefix."""
    rt = bench_runtime(endpoint)
    client = rt.storage.client
    counter = RequestCounter(client)
    tick_times, list_times = [], []
    pages = tick_requests = 0
    for _ in range(args.repeats):  # alternate to share the machine's noise fairly
        start = time.perf_counter()
        pages = bare_list(client, PREFIX)
        list_times.append(time.perf_counter() - start)
        before = counter.count
        start = time.perf_counter()
        report = tick(rt, Holds())
        tick_times.append(time.perf_counter() - start)
        tick_requests = counter.count - before
    assert report.claimed == [], report
    tick_s, list_s = statistics.median(tick_times), statistics.median(list_times)
    return {
        "tick_s": round(tick_s, 4),
        "bare_list_s": round(list_s, 4),
        "ratio": round(tick_s / list_s, 3),
        "tick_requests": tick_requests,
        "list_pages": pages,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=20_000, help="keys of history, about")
    parser.add_argument("--active", type=int, default=20, help="running jobs beside it")
    parser.add_argument("--pending", type=int, default=1000, help="moto: images without audio")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--server", choices=("auto", "moto", "fake"), default="auto",
        help=f"auto: moto up to {MOTO_LIMIT:,} keys, the fake listing server past that",
    )  # fmt: skip
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    if args.server == "fake" or (args.server == "auto" and args.keys > MOTO_LIMIT):
        finished = args.keys // len(fake_s3.NAMES)
        receive, send = multiprocessing.Pipe(duplex=False)
        server = multiprocessing.Process(
            target=fake_s3.serve, args=(BUCKET, PREFIX, finished, send), daemon=True
        )
        server.start()
        try:
            endpoint = f"http://127.0.0.1:{receive.recv()}"
            result = run(endpoint, args, finished, "fake S3 listing server")
        finally:
            server.terminate()
        print(json.dumps(result))
        return

    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = make_client(endpoint, "us-east-1")
        client.create_bucket(Bucket=BUCKET)
        finished = max(0, (args.keys - args.pending) // len(fake_s3.NAMES))
        populate_moto(client, finished, args.pending)
        print(f"populated {finished * len(fake_s3.NAMES) + args.pending} keys", file=sys.stderr)
        result = ratio_fields(endpoint, args)
        result.update(run(endpoint, args, finished, "moto"))
    finally:
        server.stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
