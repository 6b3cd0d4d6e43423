"""The LongCat-Video-Avatar DiT against the published key list (tests/data/longcat_avatar_keys.json).

The published checkpoints must load with zero missing keys, zero unexpected keys and the right
shapes: checked at a tiny size with real tensors and at full size on the meta device (shapes
only), for both audio front ends (v1.5 Whisper, v1.0 wav2vec2).
"""

from __future__ import annotations

import ast
import json
import operator
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from gpu.longcat import keymap  # noqa: E402
from gpu.longcat.model import FULL_SIZE, V10_AUDIO, LongCatAvatarTransformer  # noqa: E402

FACTS = json.loads((Path(__file__).parent / "data" / "longcat_avatar_keys.json").read_text())
# A tiny DiT: width 32, 4 heads of 8 (3D RoPE needs a multiple of 8), two blocks.
TINY_CONFIG = {
    "in_channels": 4,
    "out_channels": 4,
    "hidden_size": 32,
    "depth": 2,
    "num_heads": 4,
    "caption_channels": 16,
    "mlp_ratio": 4,
    "adaln_tembed_dim": 16,
    "frequency_embedding_size": 16,
    "patch_size": [1, 2, 2],
    "audio_window": 5,
    "audio_block": 5,
    "audio_channel": 8,
    "intermediate_dim": 16,
    "output_dim": 8,
    "context_tokens": 4,
    "vae_scale": 4,
    "audio_prenorm": False,
    "text_tokens_zero_pad": True,
}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}


def symbols(config: dict) -> dict[str, int]:
    """The shape symbols of the key rules for a model config (as the reference derives them)."""
    h, mlp = config["hidden_size"], config["mlp_ratio"]
    ff = int(2 * h * mlp / 3)
    return {
        "h": h,
        "td": config["adaln_tembed_dim"],
        "hd": h // config["num_heads"],
        "ff": 256 * ((ff + 255) // 256),
        "od": config["output_dim"],
        "freq": config["frequency_embedding_size"],
        "caption": config["caption_channels"],
        "in_channels": config["in_channels"],
        "out_channels": config["out_channels"],
        "inter": config["intermediate_dim"],
        "tokens": config["context_tokens"],
        "window": config["audio_window"],
        "vae_scale": config["vae_scale"],
        "audio_block": config["audio_block"],
        "audio_channel": config["audio_channel"],
        "num_layers": config["depth"],
    }


def _eval(expr, names: dict[str, int]) -> int:
    if isinstance(expr, int):
        return expr

    def walk(node):
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise ValueError(f"unsupported shape expression {expr!r}")

    return walk(ast.parse(expr, mode="eval").body)


def reference_keys(config: dict) -> dict[str, tuple[int, ...]]:
    """Every published key of a checkpoint with this config, with its shape."""
    names = symbols(config)
    out = {k: tuple(_eval(d, names) for d in s) for k, s in FACTS["top"].items()}
    for i in range(config["depth"]):
        for pattern, shape in FACTS["block"].items():
            out[pattern.format(i=i)] = tuple(_eval(d, names) for d in shape)
    return out


def _check(config: dict, model: torch.nn.Module) -> None:
    published = reference_keys(config)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    converted = {
        keymap.map_key(k, ours): torch.empty(s, device="meta") for k, s in published.items()
    }
    missing, unexpected, wrong = keymap.check_complete(converted, ours)
    assert (missing, unexpected, wrong) == ([], [], [])


def test_tiny_model_loads_the_published_layout_with_zero_missing_unexpected_or_wrong():
    model = LongCatAvatarTransformer(**TINY_CONFIG)
    _check(TINY_CONFIG, model)
    state = {k: torch.randn(s) for k, s in reference_keys(TINY_CONFIG).items()}
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys


@pytest.mark.parametrize("audio", [{}, V10_AUDIO], ids=["v1.5-whisper", "v1.0-wav2vec2"])
def test_full_size_model_matches_the_published_layout_on_the_meta_device(audio):
    config = {**FULL_SIZE, **audio}
    with torch.device("meta"):
        model = LongCatAvatarTransformer(**config)
    _check({**config, "patch_size": list(config["patch_size"])}, model)
    assert len(model.state_dict()) == FACTS["counts_full"]["keys"]
    params = sum(p.numel() for p in model.parameters())
    audio_params = sum(p.numel() for n, p in model.named_parameters() if "audio" in n)
    # The model card's 13.6B DiT; with v1.5's audio adapter 15.85B, the 31.7 GB of base_model/
    # in bf16.
    assert round((params - audio_params) / 1e8) == 136
    if not audio:
        assert params == 15_852_916_800


def test_rules_at_full_size_are_the_reference_sizes():
    names = symbols(FULL_SIZE)
    assert names["ff"] == 11008 and names["hd"] == 128
    assert {k: names[k] for k in FACTS["symbols_full"]} == FACTS["symbols_full"]


def test_unknown_keys_are_refused_and_lora_names_decode():
    ours = set(LongCatAvatarTransformer(**TINY_CONFIG).state_dict())
    assert keymap.map_key("model.blocks.0.attn.qkv.weight", ours) == "blocks.0.attn.qkv.weight"
    with pytest.raises(keymap.KeyMapError, match="no place"):
        keymap.map_key("blocks.0.audio_cross_attn.add_k_norm.weight", ours)
    name = "lora___lorahyphen___blocks___lorahyphen___3___lorahyphen___ffn___lorahyphen___w1"
    assert keymap.lora_target(name) == "blocks.3.ffn.w1"


def int8_keys(config: dict) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """The INT8 checkpoint's keys: each Linear weight (2-D) but the final one as int8 + scale."""
    out = {}
    for key, shape in reference_keys(config).items():
        module = key.removesuffix(".weight")
        if len(shape) == 2 and key.endswith(".weight") and module != "final_layer.linear":
            out[f"{module}.weight_int8"] = (shape, torch.int8)
            out[f"{module}.weight_scale"] = ((shape[0],), torch.float32)
        else:
            out[key] = (shape, None)
    return out


def test_int8_layout_at_full_size_on_the_meta_device():
    from gpu.longcat.int8 import quantized_layout

    with torch.device("meta"):
        model = quantized_layout(LongCatAvatarTransformer(**FULL_SIZE))
    ours = model.state_dict()
    published = int8_keys({**FULL_SIZE, "patch_size": list(FULL_SIZE["patch_size"])})
    assert set(ours) == set(published)
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: s for k, (s, _) in published.items()}
    assert all(ours[k].dtype == d for k, (_, d) in published.items() if d is not None)
    int8_bytes = sum(v.numel() * v.element_size() for v in ours.values() if v.dtype == torch.int8)
    assert round(int8_bytes / 1e9) == 16  # half the bf16 DiT
