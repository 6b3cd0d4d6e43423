"""Published checkpoint names -> `LongCatAvatarTransformer` names, and the DMD LoRA's names.

Our model keeps the reference's module tree, so a published DiT key is already our name (the
published `base_model/` and `avatar_single/` shards load unchanged); the one place that says so
is `map_key`, which also refuses a key the model has no place for, so a checkpoint that does not
match fails to load loudly instead of being silently dropped. The DMD LoRA
(`lora/dmd_lora.safetensors`) names its target modules the kohya way:
`lora___lorahyphen___blocks___lorahyphen___0___lorahyphen___attn___lorahyphen___qkv`, with
`.lora_down.weight`, `.lora_up.weight` (or `.lora_up.blocks.K.weight` for a target split in K
output chunks) and `.alpha_scale`.
"""

from __future__ import annotations

from collections.abc import Iterable

from gpu.infinitetalk.keymap import KeyMapError, check_complete, load_checked

LORA_PREFIX = "lora___lorahyphen___"
LORA_HYPHEN = "___lorahyphen___"
PREFIXES = ("model.", "dit.")

__all__ = ["KeyMapError", "check_complete", "load_checked", "lora_target", "map_key"]


def map_key(key: str, ours: Iterable[str]) -> str:
    """Our parameter name for a published DiT key; KeyMapError if the model has no such place."""
    known = ours if isinstance(ours, set | frozenset | dict) else set(ours)
    if key in known:
        return key
    for prefix in PREFIXES:
        if key.startswith(prefix) and key[len(prefix) :] in known:
            return key[len(prefix) :]
    raise KeyMapError(f"checkpoint key {key!r} has no place in the LongCat-Video-Avatar DiT")


def lora_target(name: str) -> str:
    """The module path a DMD LoRA entry name points at (`blocks.0.attn.qkv`)."""
    if not name.startswith(LORA_PREFIX):
        raise KeyMapError(f"LoRA entry {name!r} does not start with {LORA_PREFIX!r}")
    return name[len(LORA_PREFIX) :].replace(LORA_HYPHEN, ".")
