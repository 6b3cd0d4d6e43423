"""bench/parallel.py still runs and prints its JSON line (tiny sizes; figures are not checked
beyond being there and sane)."""

from __future__ import annotations

from tests.helpers import bench_json


def test_parallel_bench_prints_json_last():
    args = ["--seconds", "12", "--longest", "5", "--cost", "0.002", "--workers", "1", "2"]
    result = bench_json("parallel.py", *args)
    assert result["speedup_1"] == 1.0 and result["speedup_2"] > 0
    assert result["segments_1"] >= 3 and result["frames"] == 300
    assert 0 < result["split_join_fraction"] < 1
