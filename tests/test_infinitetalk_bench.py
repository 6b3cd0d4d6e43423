"""bench/gpu_engines_talking.py --tiny runs its whole path on the CPU and prints one JSON line
(the figures at tiny size mean nothing; the path, the profile's features and the fields do)."""

from __future__ import annotations

import pytest

from tests.helpers import bench_json

pytest.importorskip("torch")


def test_talking_bench_tiny_prints_one_json_line_per_run():
    args = ["--tiny", "--seconds", "0.5", "--profiles", "fast,balanced", "--speakers", "2"]
    result = bench_json("gpu_engines_talking.py", *args)
    assert result["tiny"] is True and result["speakers"] == 2
    fast, balanced = result["profiles"]["fast"], result["profiles"]["balanced"]
    assert (fast["steps"], fast["guidance_branches"], fast["lora"]) == (4, 2, "lightx2v")
    assert fast["speed"][0].startswith("fp8 weight storage")
    assert (balanced["steps"], balanced["guidance_branches"]) == (40, 3)
    for figures in (fast, balanced):
        assert figures["gpu_s_per_video_s"] > 0 and figures["peak_memory_gib"] > 0
    assert "fast_goal" not in result  # tiny figures say nothing about the goal
