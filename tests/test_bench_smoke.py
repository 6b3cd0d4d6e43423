"""bench/encode.py still runs and prints its JSON line (tiny sizes; figures are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_encode_bench_prints_json_last():
    args = ["--frames", "6", "--rounds", "1", "--long", "12", "--width", "128", "--height", "96"]
    done = subprocess.run(
        [sys.executable, "bench/encode.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["frames"] == 6
    assert result["ratio_vs_bare_pyav"] > 0
    assert result["peak_rss_mb_6"] > 0 and result["peak_rss_mb_12"] > 0
    assert ("speedup_vs_png_ffmpeg" in result) and ("png_ffmpeg_s" in result)
