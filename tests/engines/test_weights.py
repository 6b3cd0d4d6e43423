"""One weights system: a local and a Modal pull ask for the same files, and those are exactly the
files the engines' loaders open.

The download function is replaced by a recorder (the claim is about which files are requested);
what the loaders open is seen by the kernel (tests/file_opens.py) during a real load of the tiny
published layouts (tests/tiny_models.py, tests/infinitetalk_tiny.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub
import modal
import pytest
from huggingface_hub.utils import filter_repo_objects
from PIL import Image

from config.settings import get_settings
from gpu import weights
from gpu.diffusers_models import MODELS
from gpu.engine import RenderRequest
from gpu.registry import ENGINES, get_spec
from gpu.weights import local_snapshot, sources_for
from infra.cli.main import main
from tests.file_opens import opened_files
from tests.modal_helpers import load_app
from tests.tiny_models import BUILDERS

get_spec("preview")  # the built-in registrations
PULLS = [(name, p) for name, spec in ENGINES.items() for p in (None, *spec.profiles)]


@pytest.fixture
def empty_places(monkeypatch, tmp_path):
    """Settings pointing at empty weight folders."""
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    monkeypatch.setenv("DROPREEL_HF_CACHE_DIR", str(tmp_path / "hf"))
    monkeypatch.setenv("DROPREEL_WEIGHTS_DIR", str(tmp_path / "weights"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def weights_env(empty_places, monkeypatch):
    """A recorder in place of the Hub download; `--modal` runs the app's function here."""
    requested: list[tuple[str, str, tuple[str, ...]]] = []

    def snapshot_download(repo_id, *, revision, allow_patterns, cache_dir=None, local_dir=None):
        requested.append((repo_id, revision, tuple(allow_patterns)))
        return local_dir or f"{cache_dir}/models--{repo_id.replace('/', '--')}/snapshots/x"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    # nothing is downloaded, so there is nothing to convert after the pull
    monkeypatch.setattr(weights, "_run_conversion", lambda source, places: places.folder(source))

    class DeployedPull:  # `modal.Function.from_name(...)`, running the app's function here
        @staticmethod
        def remote(*args):
            return load_app().pull_weights.local(*args)

    monkeypatch.setattr(modal.Function, "from_name", staticmethod(lambda *_, **__: DeployedPull))
    return requested


@pytest.mark.filterwarnings("ignore:.*executing locally and will not have access")
@pytest.mark.parametrize(("engine", "profile"), PULLS)
def test_local_and_modal_pulls_ask_for_the_same_files(weights_env, capsys, engine, profile):
    argv = ["weights", "pull", engine, *(["--profile", profile] if profile else [])]
    assert main(argv) == 0
    local, printed_locally = list(weights_env), json.loads(capsys.readouterr().out)
    weights_env.clear()
    assert main([*argv, "--modal", "--wait"]) == 0
    assert weights_env == local
    assert json.loads(capsys.readouterr().out) == printed_locally
    spec = get_spec(engine)
    wanted = sources_for(spec, [profile] if profile else None)
    assert local == [(s.repo_id, s.revision or "main", s.patterns) for s in wanted]
    assert bool(local) == bool(spec.weights)


@pytest.mark.filterwarnings("ignore:.*executing locally and will not have access")
def test_a_profile_pulls_only_its_checkpoint_on_modal_too(weights_env, capsys):
    argv = ["weights", "pull", "ltx-video", "--profile", "balanced", "--modal", "--wait"]
    assert main(argv) == 0
    pulls = {repo: patterns for repo, _, patterns in weights_env}
    assert len(pulls) == len(weights_env) == 2
    assert pulls["Lightricks/LTX-Video"] == ("ltxv-spatial-upscaler-0.9.8.safetensors",)
    patterns = pulls["Lightricks/LTX-Video-0.9.8-13B-distilled"]
    assert "model_index.json" in patterns and "*" not in patterns
    weights_env.clear()
    argv = ["weights", "pull", "talking-head", "--profile", "balanced", "--modal", "--wait"]
    assert main(argv) == 0
    assert "Wan-AI/Wan2.1-I2V-14B-480P" in [repo for repo, _, _ in weights_env]
    assert not [repo for repo, _, _ in weights_env if "LoRA" in repo or "Fusio" in repo]
    assert main(["weights", "pull", "mochi", "--profile", "turbo", "--modal"]) == 1
    assert "mochi has no profile turbo" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*executing locally and will not have access")
def test_a_single_file_profile_pulls_that_file_and_only_the_rest_of_its_config(weights_env):
    """LTX-Video `fast`: one file of Lightricks' ~250 GB repository, and from the diffusers
    repo that configures it everything but its transformer and VAE weights."""
    assert main(["weights", "pull", "ltx-video", "--profile", "fast", "--modal", "--wait"]) == 0
    (single, single_patterns), (config, config_patterns), upscaler = [
        (r, p) for r, _, p in weights_env
    ]
    assert (single, single_patterns) == (
        "Lightricks/LTX-Video",
        ("ltxv-2b-0.9.8-distilled.safetensors",),
    )
    assert upscaler == ("Lightricks/LTX-Video", ("ltxv-spatial-upscaler-0.9.8.safetensors",))
    assert config == "Lightricks/LTX-Video-0.9.5"
    files = [
        "model_index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model-00001-of-00004.safetensors",
        "text_encoder/model.safetensors.index.json",
        "tokenizer/spiece.model",
    ]
    assert pulled(set(files), config_patterns) == set(files) - {
        "transformer/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
    }


def test_weights_list_shows_every_engine_in_one_table(empty_places, capsys):
    assert main(["weights", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ENGINE", "WEIGHTS", "REVISION", "PROFILES", "GB", "STATE", "WHERE"]
    assert {line.split()[0] for line in lines[1:]} == set(ENGINES)
    assert main(["weights", "list", "infinitetalk", "--json"]) == 1  # named and missing
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"wan-transformer", "wav2vec2", "fusionx-lora"}
    assert not any(r["present"] for r in rows)


def files_under(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def pulled(files: set[str], patterns: tuple[str, ...]) -> set[str]:
    """The files a pull with these patterns downloads, by huggingface_hub's own filter."""
    return set(filter_repo_objects(sorted(files), allow_patterns=list(patterns)))


TINY_CHECKPOINTS = [
    (name, variant.name, next(k for k in kinds if k in variant.pipelines))
    for name, (_, kinds) in BUILDERS.items()
    for variant in MODELS[name].variants.values()
    if set(kinds) & set(variant.pipelines)
]


@pytest.mark.parametrize(("engine", "variant", "kind"), TINY_CHECKPOINTS)
def test_diffusers_loaders_open_exactly_the_pulled_files(tiny_cache, engine, variant, kind):
    import importlib

    spec = MODELS[engine]
    chosen = next(v for v in spec.variants.values() if v.name == variant)
    module, _, cls = spec.target.partition(":")
    loader = getattr(importlib.import_module(module), cls)(cache_dir=tiny_cache, device="cpu")
    loader.load()
    profile = next(p for p in spec.profiles if spec.variant_for(p, kind).name == variant)
    image = Image.new("RGB", (64, 48)) if kind == "image_to_video" else None
    plan = loader.check_inputs(RenderRequest(kind=kind, prompt="sky", profile=profile, image=image))
    # Every repository the checkpoint loads from (a single file's config repo, an upscaler):
    # the files opened in the cache are exactly those its sources pull.
    matched = set()
    for source in chosen.sources:
        snapshot = local_snapshot(source, tiny_cache, engine).path
        where = snapshot.relative_to(tiny_cache).as_posix()
        matched |= {f"{where}/{f}" for f in pulled(files_under(snapshot), source.patterns)}
    with opened_files(tiny_cache) as opened:
        loader.pipeline(plan)
    assert matched and opened == matched


@pytest.fixture(scope="module")
def tiny_talking_head(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    from tests import infinitetalk_tiny

    return infinitetalk_tiny.build(tmp_path_factory.mktemp("talking-head"))


@pytest.mark.parametrize("profile", ["fast", "balanced", "quality", "low_vram"])
def test_talking_head_loader_opens_exactly_the_pulled_files(tiny_talking_head, profile):
    from gpu.infinitetalk.engine import InfiniteTalkEngine

    root = tiny_talking_head
    spec = get_spec("infinitetalk")
    assert set(spec.profiles) == {"fast", "balanced", "quality", "low_vram"}
    matched = set()
    for source in sources_for(spec, [profile]):
        folder = root / str(source.folder)
        files = files_under(folder) if folder.is_dir() else set()
        matched |= {f"{source.folder}/{f}" for f in pulled(files, source.patterns)}
    with opened_files(root) as opened:
        InfiniteTalkEngine(weights_dir=root, profile=profile, device="cpu").load()
    assert opened == matched
    assert any("lora" in f.lower() for f in matched) == (profile == "fast")
