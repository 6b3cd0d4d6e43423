"""The one place that maps published checkpoint names to the names of `InfiniteTalkTransformer`.

The published weights are Wan2.1-I2V-14B-480P's transformer shards plus InfiniteTalk's
`single/infinitetalk.safetensors`, both in the reference's (original Wan) naming, for example
`blocks.7.self_attn.q.weight` or `blocks.7.audio_cross_attn.kv_linear.weight`. LoRAs for Wan
(FusioniX, lightx2v) use the same names behind a `diffusion_model.` prefix. Our model is diffusers'
Wan transformer, so the base names change (`blocks.7.attn1.to_q.weight`) and the adapter's names
stay as published. A key this module does not know is an error, never silently dropped: a
checkpoint that does not match the model must fail to load, loudly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

# Module paths outside the blocks: original -> ours.
TOP_MODULES: dict[str, str] = {
    "patch_embedding": "patch_embedding",
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "head.head": "proj_out",
    # InfiniteTalk's audio projection keeps its published names.
    "audio_proj.proj1": "audio_proj.proj1",
    "audio_proj.proj1_vf": "audio_proj.proj1_vf",
    "audio_proj.proj2": "audio_proj.proj2",
    "audio_proj.proj3": "audio_proj.proj3",
    "audio_proj.norm": "audio_proj.norm",
}
# Bare parameters (no module of their own): original -> ours.
TOP_PARAMS: dict[str, str] = {"head.modulation": "scale_shift_table"}

# Module paths inside `blocks.N.`: original -> ours.
BLOCK_MODULES: dict[str, str] = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    # The reference's norm3 is the affine norm before the cross-attention (diffusers: norm2);
    # its norm1/norm2 carry no parameters.
    "norm3": "norm2",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "audio_cross_attn.q_linear": "audio_cross_attn.q_linear",
    "audio_cross_attn.kv_linear": "audio_cross_attn.kv_linear",
    "audio_cross_attn.proj": "audio_cross_attn.proj",
    "norm_x": "norm_x",
}
BLOCK_PARAMS: dict[str, str] = {"modulation": "scale_shift_table"}

PREFIXES = ("model.diffusion_model.", "diffusion_model.", "model.")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


class KeyMapError(KeyError):
    """A checkpoint key has no place in the model; the message names it."""

    def __str__(self) -> str:  # KeyError quotes its message; we want plain words
        return str(self.args[0]) if self.args else ""


def strip_prefix(key: str) -> str:
    for prefix in PREFIXES:
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def map_key(key: str) -> str:
    """Our parameter name for one published (original-naming) parameter name."""
    key = strip_prefix(key)
    if key in TOP_PARAMS:
        return TOP_PARAMS[key]
    match = _BLOCK.match(key)
    if match:
        index, rest = match.groups()
        if rest in BLOCK_PARAMS:
            return f"blocks.{index}.{BLOCK_PARAMS[rest]}"
        module, _, param = rest.rpartition(".")
        if module in BLOCK_MODULES and param in ("weight", "bias"):
            return f"blocks.{index}.{BLOCK_MODULES[module]}.{param}"
    else:
        module, _, param = key.rpartition(".")
        if module in TOP_MODULES and param in ("weight", "bias"):
            return f"{TOP_MODULES[module]}.{param}"
    raise KeyMapError(f"checkpoint key {key!r} has no place in the InfiniteTalk transformer")


def map_module(path: str) -> str:
    """Our module path for a published module path (used for LoRA targets)."""
    return map_key(f"{path}.weight").removesuffix(".weight")


def convert_state_dict(
    state: Mapping[str, Any], ours: Iterable[str] | None = None
) -> dict[str, Any]:
    """Rename a published state dict to our names.

    Keys already in our naming (a diffusers-format transformer) pass through when `ours` is
    given and contains them. Two sources for one parameter are an error.
    """
    known = set(ours) if ours is not None else set()
    out: dict[str, Any] = {}
    for key, value in state.items():
        name = key if key in known else map_key(key)
        if name in out:
            raise KeyMapError(f"two checkpoint keys map to {name!r} (the second is {key!r})")
        out[name] = value
    return out


def check_complete(
    loaded: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]]
) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, wrong shape) of a converted state dict against the model's shapes."""
    missing = sorted(set(expected) - set(loaded))
    unexpected = sorted(set(loaded) - set(expected))
    wrong = sorted(
        f"{k}: checkpoint {tuple(loaded[k].shape)} vs model {tuple(expected[k])}"
        for k in set(loaded) & set(expected)
        if tuple(loaded[k].shape) != tuple(expected[k])
    )
    return missing, unexpected, wrong


def load_checked(model, state: Mapping[str, Any], what: str, command: str) -> None:
    """Load `state` into `model` (assigning its tensors) if it has exactly the model's keys and
    shapes; otherwise an EngineError naming the missing, unexpected and wrongly shaped keys and
    the `command` that pulls the weights again."""
    from gpu.errors import EngineError

    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing, unexpected, wrong = check_complete(state, expected)
    if missing or unexpected or wrong:
        raise EngineError(
            f"the {what} weights do not match the model: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}), {len(wrong)} wrongly shaped (e.g. {wrong[:2]}); "
            f"pull them again with `{command}`"
        )
    model.load_state_dict(state, strict=True, assign=True)
