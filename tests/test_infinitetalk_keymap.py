"""The key map against the reference's key list and shape rules (tests/data/infinitetalk_keys.json).

The published checkpoints must load into our model with zero missing keys, zero unexpected keys
and the right shapes; this is checked at a tiny width and depth (real tensors) and at the full
14B size (on the meta device: shapes only, no memory).
"""

from __future__ import annotations

import ast
import json
import operator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk import keymap  # noqa: E402
from gpu.infinitetalk.model import InfiniteTalkTransformer  # noqa: E402

FACTS = json.loads((Path(__file__).parent / "data" / "infinitetalk_keys.json").read_text())
TINY = {
    "dim": 24,
    "ffn_dim": 32,
    "num_heads": 2,
    "num_layers": 2,
    "in_dim": 12,
    "out_dim": 4,
    "text_dim": 16,
    "freq_dim": 16,
    "image_dim": 8,
    "audio_window": 5,
    "vae_scale": 4,
    "audio_layers": 3,
    "audio_dim": 8,
    "audio_hidden": 16,
    "audio_tokens": 4,
    "audio_out": 8,
}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def _eval(expr, symbols: dict[str, int]) -> int:
    if isinstance(expr, int):
        return expr

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return symbols[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unsupported shape expression {expr!r}")

    return walk(ast.parse(expr, mode="eval").body)


def reference_keys(part: str, symbols: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """The published keys of `part` ("wan" or "infinitetalk") with their shapes."""
    rules = FACTS[part]
    out = {k: tuple(_eval(d, symbols) for d in shape) for k, shape in rules["top"].items()}
    for i in range(symbols["num_layers"]):
        for pattern, shape in rules["block"].items():
            out[pattern.format(i=i)] = tuple(_eval(d, symbols) for d in shape)
    return out


def model_config(s: dict[str, int]) -> dict:
    return {
        "num_attention_heads": s["num_heads"],
        "attention_head_dim": s["dim"] // s["num_heads"],
        "in_channels": s["in_dim"],
        "out_channels": s["out_dim"],
        "text_dim": s["text_dim"],
        "freq_dim": s["freq_dim"],
        "ffn_dim": s["ffn_dim"],
        "num_layers": s["num_layers"],
        "image_dim": s["image_dim"],
        "added_kv_proj_dim": s["dim"],
        "audio_window": s["audio_window"],
        "vae_scale_temporal": s["vae_scale"],
        "audio_layers": s["audio_layers"],
        "audio_dim": s["audio_dim"],
        "audio_hidden_dim": s["audio_hidden"],
        "audio_tokens": s["audio_tokens"],
        "audio_context_dim": s["audio_out"],
    }


def _check(symbols: dict[str, int], model: torch.nn.Module) -> None:
    published = {**reference_keys("wan", symbols), **reference_keys("infinitetalk", symbols)}
    converted = keymap.convert_state_dict({k: torch.empty(0) for k in published})
    shapes = {keymap.map_key(k): s for k, s in published.items()}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sorted(set(ours) - set(converted)) == []  # missing
    assert sorted(set(converted) - set(ours)) == []  # unexpected
    assert {k: v for k, v in shapes.items() if ours[k] != v} == {}  # wrong shapes


def test_reference_facts_at_14b_are_self_consistent():
    s = FACTS["symbols_14b"]
    wan, talk = reference_keys("wan", s), reference_keys("infinitetalk", s)
    assert len(wan) == FACTS["counts_14b"]["wan"]
    assert len(talk) == FACTS["counts_14b"]["infinitetalk"]
    assert not set(wan) & set(talk)
    for key, shape in FACTS["known_full_size_shapes"].items():
        assert talk[key] == tuple(shape)


def test_keymap_loads_reference_layout_at_tiny_size():
    model = InfiniteTalkTransformer(**model_config(TINY))
    _check(TINY, model)
    published = {**reference_keys("wan", TINY), **reference_keys("infinitetalk", TINY)}
    state = keymap.convert_state_dict({k: torch.randn(s) for k, s in published.items()})
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


def test_keymap_matches_full_size_model_on_meta_device():
    s = FACTS["symbols_14b"]
    with torch.device("meta"):
        model = InfiniteTalkTransformer(**model_config(s))
    _check(s, model)
    params = sum(p.numel() for n, p in model.named_parameters() if "audio" in n or "norm_x" in n)
    assert params == 2_487_168_000  # the adapter's size, from the shapes above


def test_base_names_agree_with_diffusers_own_wan_converter():
    from diffusers.loaders.single_file_utils import convert_wan_transformer_to_diffusers

    wan = reference_keys("wan", TINY)
    theirs = convert_wan_transformer_to_diffusers({k: torch.zeros(1) for k in wan})
    assert set(theirs) == {keymap.map_key(k) for k in wan}


def test_lora_prefixes_and_unknown_keys():
    assert keymap.map_key("diffusion_model.blocks.3.self_attn.q.weight") == (
        "blocks.3.attn1.to_q.weight"
    )
    assert keymap.map_module("blocks.0.cross_attn.k_img") == "blocks.0.attn2.add_k_proj"
    with pytest.raises(keymap.KeyMapError, match="no place"):
        keymap.map_key("blocks.0.audio_cross_attn.add_k_norm.weight")
    with pytest.raises(keymap.KeyMapError, match="two checkpoint keys"):
        keymap.convert_state_dict({"head.modulation": 1, "model.head.modulation": 2})
