"""bench/gpu_engines_talking.py's longcat-avatar entry runs with --tiny on the CPU (figures are not
checked; on a machine without CUDA the full-size entry says so and exits 2)."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import run_bench

pytest.importorskip("torch")


def _bench(*args: str) -> subprocess.CompletedProcess:
    return run_bench("gpu_engines_talking.py", "--engine", "longcat-avatar", *args, check=False)


def test_tiny_entry_renders_end_to_end_and_reports_its_cost():
    done = _bench("--tiny", "--seconds", "1.0", "--profiles", "fast")
    assert done.returncode == 0, done.stderr[-2000:]
    row = json.loads(done.stdout[done.stdout.index("{") :])["profiles"]["fast"]
    assert row["frames"] == 25 and row["fps"] == 25 and row["segments"] == 2
    assert row["gpu_s_per_video_s"] > 0 and row["peak_rss_mb"] > 0


def test_full_size_entry_needs_cuda():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is here: the full-size entry would run")
    done = _bench("--profiles", "fast")
    assert done.returncode == 2 and "no CUDA device" in done.stdout
