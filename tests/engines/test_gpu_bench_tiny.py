"""bench/gpu_engines.py runs the engines' own code path with --tiny on CPU (figures unchecked)."""

from __future__ import annotations

import json

from tests.helpers import run_bench


def test_gpu_bench_tiny_prints_one_json_line_per_profile():
    args = ["--tiny", "--warmup", "0", "--engine", "ltx-video", "--profile", "fast"]
    args += ["--profile", "low_vram"]
    done = run_bench("gpu_engines.py", *args)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["profile"] for r in rows] == ["fast", "low_vram"]
    for row in rows:
        assert row["pipeline"] == "LTXConditionPipeline" and row["fps"] == 30
        assert row["frames"] == 9 and row["clip_s"] > 0 and row["compute_per_video_s"] > 0
        assert all(v.startswith("skipped on cpu") for v in row["speed"].values())
        # the multiscale flow: 2/3 of 96x64 floored to the 32 grid, then upsampled x2
        assert row["passes"] == ["64x32", "128x64"] and row["steps"] == 2 + 4
