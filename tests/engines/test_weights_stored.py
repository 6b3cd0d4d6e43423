"""The talking-head transformer is stored once in the dtype the engine runs.

`dropreel weights pull talking-head` downloads the published fp32 shards into a staging folder
and writes them to the weights folder in bf16 (the modules the model keeps in float32 stay
float32), then removes the download. A GPU load of the stored files gives bit for bit the model
a load of the published files gives; a second pull of the same revision downloads nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import huggingface_hub
import pytest

torch = pytest.importorskip("torch")

from safetensors import safe_open  # noqa: E402

from config.settings import get_settings  # noqa: E402
from gpu.infinitetalk.weights import WEIGHTS, store_bf16  # noqa: E402
from gpu.registry import get_spec  # noqa: E402
from gpu.weights import STORED, Places, pull  # noqa: E402

WAN = "Wan2.1-I2V-14B-480P"


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> Path:
    from tests import infinitetalk_tiny

    return infinitetalk_tiny.build(tmp_path_factory.mktemp("published"))


def dtypes(folder: Path) -> dict[str, torch.dtype]:
    found = {}
    for shard in sorted(folder.glob("*.safetensors")):
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118
                found[key] = f.get_tensor(key).dtype
    return found


def test_stored_transformer_is_bf16_with_the_float32_modules_kept(published, tmp_path):
    download = tmp_path / "download"
    shutil.copytree(published / WAN, download)
    store_bf16(download, tmp_path / "stored")
    before, after = dtypes(published / WAN), dtypes(tmp_path / "stored")
    assert set(after) == set(before)  # the same tensor names, nothing added or lost
    assert set(before.values()) == {torch.float32}
    kept = {k for k, d in after.items() if d == torch.float32}
    assert kept and any("norm3" in k or "modulation" in k for k in kept)
    assert {d for k, d in after.items() if k not in kept} == {torch.bfloat16}
    assert sorted(p.name for p in (tmp_path / "stored").iterdir()) == sorted(
        p.name for p in (published / WAN).iterdir()
    )
    assert not list(download.glob("*.safetensors"))  # each published shard went once written


def test_a_load_of_the_stored_files_equals_a_load_of_the_published_ones(published, tmp_path):
    from gpu.infinitetalk.pipeline import load_transformer

    download = tmp_path / "download"
    shutil.copytree(published / WAN, download)
    store_bf16(download, tmp_path / "stored")
    adapter = published / "InfiniteTalk" / "single" / "infinitetalk.safetensors"
    a = load_transformer(published / WAN, adapter, torch.bfloat16).state_dict()
    b = load_transformer(tmp_path / "stored", adapter, torch.bfloat16).state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key


def test_pull_stores_once_per_revision(published, tmp_path, monkeypatch):
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    monkeypatch.setenv("DROPREEL_WEIGHTS_DIR", str(tmp_path / "weights"))
    get_settings.cache_clear()
    downloads: list[str] = []

    def snapshot_download(repo_id, *, revision, allow_patterns, cache_dir=None, local_dir=None):
        downloads.append(repo_id)
        if local_dir is not None and repo_id == WEIGHTS[0].repo_id:
            shutil.copytree(published / WAN, local_dir, dirs_exist_ok=True)
        return local_dir or str(tmp_path / "hf")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    spec = get_spec("infinitetalk")
    places = Places(weights_dir=str(tmp_path / "weights"))
    try:
        first = pull(spec, ["balanced"], places)
        stored = tmp_path / "weights" / WAN
        assert (stored / STORED).is_file()
        assert not (tmp_path / "weights" / f"{WAN}.download").exists()
        assert set(dtypes(stored).values()) == {torch.bfloat16, torch.float32}
        wan = next(r for r in first["repos"] if r["repo"] == WEIGHTS[0].repo_id)
        assert wan["path"] == str(stored) and wan["disk_gb"] >= 0
        downloads.clear()
        pull(spec, ["balanced"], places)
        assert WEIGHTS[0].repo_id not in downloads  # already stored at this revision
    finally:
        get_settings.cache_clear()
