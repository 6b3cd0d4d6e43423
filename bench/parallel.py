"""Parallel talking heads: wall time of one long job on 1, 4 and 8 workers, in one run.

    python bench/parallel.py                     # a 60 s job, 0.1 s per frame, 1/4/8 workers
    python bench/parallel.py --seconds 12 --longest 5 --cost 0.002 --workers 1 2  # smoke

A simulated engine (a fixed cost per frame, spent asleep as a GPU would leave the CPU alone) renders a talking head of `--seconds` of speech with pauses, through
the real lifecycle on a local folder: claim, split at pauses (handlers/segments.py), segments on
the local segment pool, join, upload. Each worker count is one job with
`parallel_gpus_per_job` = `parallel_gpus` = that count. The speed-up is the one-worker wall
time over each run's; `split_join_fraction` is the time of the split and join stages (status
.json's timings) over the whole wall time of the run with the most workers, where it weighs
most. Real engines cost far more per frame (InfiniteTalk: seconds per frame), so the split and
join weigh less there than here.

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from config.settings import Settings  # noqa: E402
from gpu.pauses import plan_cuts  # noqa: E402
from gpu.preview import PreviewEngine  # noqa: E402
from handlers.runtime import Runtime  # noqa: E402
from infra.cli.samples import flat_png, talk_with_pauses  # noqa: E402
from infra.local_dispatch import InlineDispatcher  # noqa: E402
from infra.local_segments import LocalSegments  # noqa: E402
from infra.notify.notifiers import NullNotifier  # noqa: E402
from infra.storage.local import LocalStorage  # noqa: E402
from triggers.poller import tick  # noqa: E402


class SimulatedEngine(PreviewEngine):
    """The preview engine's plan, then `cost` seconds per frame spent asleep (a GPU leaves the
    CPU free) and one still frame: no drawing, so the CPUs only do what dropreel does."""

    def __init__(self, cost: float) -> None:
        self.cost = cost

    def render(self, plan, progress=None):
        frame = np.asarray(plan.image.resize((plan.width, plan.height)))
        for index in range(1, plan.num_frames + 1):
            time.sleep(self.cost)
            yield frame
            if progress:
                progress(index, plan.num_frames)


def run(workers: int, args: argparse.Namespace, audio: bytes, root: Path) -> dict:
    storage = LocalStorage(root / f"bucket-{workers}")
    settings = Settings(
        _env_file=None,
        watch_root=storage.url,
        settle_seconds=0.0,
        notifier="none",
        parallel_gpus_per_job=workers,
        parallel_gpus=workers,
        parallel_segment_seconds=args.longest,
    )
    engine = SimulatedEngine(args.cost)
    segments = LocalSegments(workers)
    rt = Runtime(storage, settings, NullNotifier(), lambda name: engine, segments=segments)
    storage.put("talk/host.png", flat_png(args.size, args.size))
    storage.put("talk/host.wav", audio)
    started = time.perf_counter()
    tick(rt, InlineDispatcher(rt))
    wall = time.perf_counter() - started
    segments.close()
    status = json.loads(storage.get("talk/.dropreel/host/status.json"))
    assert status["state"] == "done", status.get("error")
    timings = status["timings"]
    return {
        "workers": workers,
        "wall_s": round(wall, 3),
        "segments": status["settings"]["parallel"]["segments"],
        "split_s": timings.get("split", 0.0),
        "join_s": timings.get("join", 0.0),
        "frames": status["video"]["frames"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the speech")
    parser.add_argument("--cost", type=float, default=0.1, help="seconds per frame")
    parser.add_argument("--longest", type=float, default=30.0, help="longest segment, seconds")
    parser.add_argument("--size", type=int, default=64, help="portrait side in pixels")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    audio, _ = talk_with_pauses(args.seconds, seed=1)
    plan_cuts(np.zeros(16_000, np.float32), 16_000, 25, 1.0)  # imports, once per process
    runs = []
    with tempfile.TemporaryDirectory(prefix="dropreel-bench-") as tmp:
        for workers in sorted(set(args.workers)):
            runs.append(run(workers, args, audio, Path(tmp)))
            print(json.dumps(runs[-1]), flush=True)
    base = runs[0]["wall_s"]
    most = runs[-1]
    result = {
        "seconds": args.seconds,
        "cost_per_frame_s": args.cost,
        "frames": most["frames"],
        **{f"wall_{r['workers']}_s": r["wall_s"] for r in runs},
        **{f"speedup_{r['workers']}": round(base / r["wall_s"], 2) for r in runs},
        **{f"segments_{r['workers']}": r["segments"] for r in runs},
        "split_join_s": round(most["split_s"] + most["join_s"], 3),
        "split_join_fraction": round((most["split_s"] + most["join_s"]) / most["wall_s"], 4),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
