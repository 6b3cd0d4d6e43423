"""bench/encode.py still runs and prints its JSON line (tiny sizes; figures are not checked)."""

from __future__ import annotations

from tests.helpers import bench_json


def test_encode_bench_prints_json_last():
    args = ["--frames", "6", "--rounds", "1", "--long", "12", "--width", "128", "--height", "96"]
    result = bench_json("encode.py", *args)
    assert result["frames"] == 6
    assert result["ratio_vs_bare_pyav"] > 0
    assert result["peak_rss_mb_6"] > 0 and result["peak_rss_mb_12"] > 0
    assert ("speedup_vs_png_ffmpeg" in result) and ("png_ffmpeg_s" in result)


def _poller_bench(*args: str) -> dict:
    return bench_json("poller.py", "--repeats", "1", "--active", "3", *args)


def test_poller_bench_on_moto_and_on_the_fake_listing_server():
    """Both servers give the same request counts for the same kind of bucket; a fast tick is
    one LIST of the index, a root event two LISTs, the sweep streams the history."""
    moto = _poller_bench("--keys", "1600", "--pending", "100")
    fake = _poller_bench("--keys", "3000", "--server", "fake")
    for result in (moto, fake):
        assert result["fast_tick_requests"] == 1, result
        assert result["webhook_root_requests"] <= 3, result
        assert result["sweep_requests"] >= result["old_tick_requests"], result
    assert moto["keys_per_finished_job"] == fake["keys_per_finished_job"] == 6
    assert moto["ratio"] > 0 and moto["finished_jobs"] == 1500 // 6
    assert fake["finished_jobs"] == 3000 // 6
    assert fake["old_tick_requests"] == 4  # 3,009 keys: four pages
