"""Each engine and profile follows the recipe table in docs/ENGINES.md, the one place it is
written down with its sources: the test reads that table and checks every row against the plan
the engine makes (pipeline class, schedule, steps, guidance, rescale, negative prompt, fps, size,
speed features)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gpu.diffusers_models import MODELS, ModelSpec
from gpu.engine import RenderRequest
from gpu.registry import load_engine

DOC = Path(__file__).resolve().parents[2] / "docs" / "ENGINES.md"


def recipe_table() -> dict[tuple[str, str], dict[str, str]]:
    """The rows of the first table under '## Recipes', keyed by (engine, profile)."""
    text = DOC.read_text().split("## Recipes", 1)[1]
    table = text[text.index("\n|") + 1 :].split("\n\n", 1)[0].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = [c.strip().replace("`", "") for c in line.strip("|").split("|")]
        row = dict(zip(header, cells, strict=True))
        rows[(row["engine"], row["profile"])] = row
    return rows


def sources_defined() -> set[str]:
    text = DOC.read_text().split("## Recipes", 1)[1]
    return set(re.findall(r"^- \[(\w+)\]", text, flags=re.M))


ROWS = recipe_table()
PAIRS = [(name, p) for name, spec in MODELS.items() for p in spec.profiles]


def speed_text(spec: ModelSpec, profile: str) -> str:
    speed = spec.profiles[profile].speed
    parts = []
    if speed.attention and spec.attention:
        parts.append(f"attention {spec.attention}")
    if speed.cache_threshold and spec.first_block_cache:
        parts.append(f"First-Block Cache {speed.cache_threshold}")
    if speed.compile:
        parts.append("compile")
    if speed.fp8_storage:
        parts.append("fp8 storage")
    if speed.vae_tiling:
        parts.append("VAE tiling")
    return ", ".join(parts)


def test_the_table_has_one_row_per_engine_and_profile():
    assert sorted(ROWS) == sorted(PAIRS)


@pytest.mark.parametrize(("engine", "profile"), PAIRS)
def test_profile_follows_its_recipe(tiny_cache, engine, profile):
    spec, row = MODELS[engine], ROWS[(engine, profile)]
    plan = load_engine(engine).check_inputs(
        RenderRequest(kind="text_to_video", prompt="a fox", profile=profile)
    )
    settings = plan.describe()
    variants = [spec.variant_for(profile, kind) for kind in spec.kinds]
    pipelines = dict.fromkeys(v.pipelines[k] for v, k in zip(variants, spec.kinds, strict=True))
    repos = dict.fromkeys(v.label for v in variants)
    assert row["checkpoint"] == " / ".join(repos)
    assert row["pipeline"] == " / ".join(pipelines)
    assert row["schedule"] == settings["schedule"]
    per_kind = dict.fromkeys(str(v.steps or spec.profiles[profile].steps) for v in variants)
    assert row["steps"] == " / ".join(per_kind)
    assert int(row["steps"].split(" / ")[0]) == settings["steps"]
    assert float(row["guidance"]) == settings["guidance"]
    assert row["rescale"] == str(settings["guidance_rescale"] or "–")
    assert row["negative prompt"] == settings["negative_prompt"]
    assert int(row["fps"]) == settings["fps"] == spec.fps
    assert row["size"] == f"{settings['width']}×{settings['height']}"
    assert row["speed features"] == speed_text(spec, profile)
    cited = set(re.findall(r"\[(\w+)\]", row["sources"]))
    assert cited and cited <= sources_defined()


TRANSFORMERS = {
    "ltx": ("LTXVideoTransformer3DModel", "transformer_ltx", "LTXVideoTransformerBlock"),
    "wan": ("WanTransformer3DModel", "transformer_wan", "WanTransformerBlock"),
    "mochi": ("MochiTransformer3DModel", "transformer_mochi", "MochiTransformerBlock"),
    "hunyuanvideo15": (
        "HunyuanVideo15Transformer3DModel",
        "transformer_hunyuan_video15",
        "HunyuanVideo15TransformerBlock",
    ),
}
MASKS_REFUSED = {"flash", "flash_hub", "_flash_3", "_flash_3_hub", "sage", "sage_hub"}
"""diffusers backends that raise on an attention mask (models/attention_dispatch.py)."""


@pytest.mark.parametrize("spec", MODELS.values(), ids=list(MODELS))
def test_model_speed_facts_match_the_installed_diffusers(spec):
    """The backend accepts what the model passes; cache and compile exist for the model."""
    import importlib

    import diffusers
    from diffusers.hooks._helpers import TransformerBlockRegistry
    from diffusers.models.attention_dispatch import AttentionBackendName

    name, module, block = TRANSFORMERS[spec.family]
    blocks = importlib.import_module(f"diffusers.models.transformers.{module}")
    TransformerBlockRegistry._register()
    assert spec.first_block_cache == (getattr(blocks, block) in TransformerBlockRegistry._registry)
    if spec.attention:
        assert spec.attention in {b.value for b in AttentionBackendName}
        assert spec.attention not in MASKS_REFUSED
    if spec.attention is None:  # its attention must indeed bypass the dispatcher
        assert "dispatch_attention_fn" not in Path(blocks.__file__).read_text()
    compiles = [p for p, profile in spec.profiles.items() if profile.speed.compile]
    assert not compiles or getattr(diffusers, name)._repeated_blocks
    caches = [p for p, profile in spec.profiles.items() if profile.speed.cache_threshold]
    assert not caches or spec.first_block_cache
