"""Does the job lifecycle add overhead of its own around an engine? (CPU, tiny weights)

For the preview engine and the tiny-weights LTX-Video engine, each measured in the same run:

- `engine_s`: the engine alone: check_inputs + render + MP4 encode, on local files;
- `lifecycle_s`: the same job dropped in an S3 bucket (moto server over real HTTP) and run by
  one poller tick: LIST, claim, download, validate, the same engine work, upload, markers,
  status.json writes, notification.

`overhead_ratio = lifecycle_s / engine_s` (median of --runs). The difference is the cost of the
bucket protocol (a fixed number of S3 requests), not something that grows with the engine: the
last line compares the handler overhead around the tiny diffusers engine with the overhead
around the preview engine (`overhead_vs_preview`, 1.0 = the same fixed cost).

    python bench/engines_cpu.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PROMPT = {
    "prompt": "a red fox walks in the city at night",
    "duration_seconds": 3.0,
    "width": 256,
    "height": 160,
    "steps": 2,
    "seed": 1,
}


def engine_only(name: str, work: Path) -> float:
    from gpu.encode import encode_mp4
    from gpu.engine import RenderRequest
    from gpu.registry import load_engine

    engine = load_engine(name)
    started = time.perf_counter()
    plan = engine.check_inputs(RenderRequest(kind="text_to_video", **PROMPT))
    encode_mp4(engine.render(plan, lambda done, total: None), plan.fps, work / "out.mp4")
    return time.perf_counter() - started


def through_lifecycle(name: str, endpoint: str) -> float:
    from config.settings import Settings
    from infra.local_dispatch import InlineDispatcher
    from infra.storage.s3 import S3Storage, make_client
    from infra.wiring import build_runtime
    from triggers.poller import tick

    client = make_client(endpoint, "us-east-1")
    bucket = f"bench-{uuid.uuid4().hex[:10]}"
    client.create_bucket(Bucket=bucket)
    storage = S3Storage(bucket, "inbox/", client=client)
    storage.put("job/prompt.json", json.dumps({**PROMPT, "engine": name}).encode())
    settings = Settings(
        _env_file=None,
        watch_root=f"s3://{bucket}/inbox/",
        endpoint_url=endpoint,
        region="us-east-1",
        settle_seconds=0,
        notifier="none",
    )
    rt = build_runtime(settings, storage=storage)
    outcomes: list[str] = []
    dispatcher = InlineDispatcher(rt, lambda job, outcome: outcomes.append(outcome))
    started = time.perf_counter()
    tick(rt, dispatcher)
    elapsed = time.perf_counter() - started
    if outcomes != ["done"]:
        raise SystemExit(f"bench job did not finish: {outcomes}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least noise)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    for var, value in (
        ("AWS_ACCESS_KEY_ID", "bench"),
        ("AWS_SECRET_ACCESS_KEY", "bench"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ):
        os.environ.setdefault(var, value)

    from moto.server import ThreadedMotoServer

    from config.settings import get_settings
    from tests.tiny_models import populate_cache

    cache = Path(tempfile.mkdtemp(prefix="dropreel-bench-hf-"))
    populate_cache(cache, ["ltx-video"])
    os.environ["DROPREEL_HF_CACHE_DIR"] = str(cache)
    get_settings.cache_clear()

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    overheads = {}
    try:
        for name, label in (("preview", "preview"), ("ltx-video", "ltx-video (tiny weights)")):
            with tempfile.TemporaryDirectory() as tmp:
                engine_only(name, Path(tmp))  # warm: load the engine once per process
                engine_runs = [engine_only(name, Path(tmp)) for _ in range(args.runs)]
            life_runs = [through_lifecycle(name, endpoint) for _ in range(args.runs)]
            engine_s, life_s = statistics.median(engine_runs), statistics.median(life_runs)
            overheads[name] = life_s - engine_s
            print(
                json.dumps(
                    {
                        "bench": "engines_cpu",
                        "engine": label,
                        "runs": args.runs,
                        "engine_s": round(engine_s, 3),
                        "lifecycle_s": round(life_s, 3),
                        "handler_overhead_s": round(life_s - engine_s, 3),
                        "overhead_ratio": round(life_s / engine_s, 3),
                        "engine_runs": [round(x, 3) for x in engine_runs],
                        "lifecycle_runs": [round(x, 3) for x in life_runs],
                    }
                )
            )
        print(
            json.dumps(
                {
                    "bench": "engines_cpu",
                    "summary": "handler overhead, tiny ltx-video vs preview",
                    "overhead_vs_preview": round(overheads["ltx-video"] / overheads["preview"], 3),
                }
            )
        )
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
