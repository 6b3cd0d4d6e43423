"""Fuse a Wan LoRA (safetensors) into the transformer's weights, the reference's way.

The reference (`wan/wan_lora.py`) reads keys `diffusion_model.<module>.lora_down.weight` /
`.lora_up.weight` (delta = up @ down), `.diff` (a full weight delta) and `.diff_b` (a bias delta),
multiplies by the scale and adds them to the weights; `alpha` entries are not used. We accept the
PEFT spelling (`lora_A` / `lora_B`) too, and map every module name through `keymap`, so a LoRA
that targets something the model lacks fails loudly instead of being half applied.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors import safe_open

from gpu.infinitetalk import keymap

log = logging.getLogger(__name__)

_DOWN = (".lora_down.weight", ".lora_A.weight")
_UP = {".lora_down.weight": ".lora_up.weight", ".lora_A.weight": ".lora_B.weight"}


@torch.no_grad()
def fuse_lora(
    model: torch.nn.Module,
    path: Path,
    scale: float = 1.0,
    backup: dict[str, torch.Tensor] | None = None,
) -> int:
    """Add `scale` x the LoRA at `path` into `model`'s weights. Returns how many were changed.

    With `backup`, the original value of every changed weight is saved there (on the CPU) first,
    so `restore` can undo the fusion exactly.
    """
    params = dict(model.named_parameters())
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
        updates: list[tuple[str, torch.Tensor]] = []
        for key in sorted(keys):
            target = None
            delta = None
            for down in _DOWN:
                if key.endswith(down):
                    up_key = key[: -len(down)] + _UP[down]
                    if up_key not in keys:
                        raise keymap.KeyMapError(f"{path.name}: {key} has no matching {up_key}")
                    module = keymap.strip_prefix(key[: -len(down)])
                    target = keymap.map_module(module) + ".weight"
                    up = f.get_tensor(up_key).float()
                    down_w = f.get_tensor(key).float()
                    delta = (up.flatten(1) @ down_w.flatten(1)).reshape(
                        up.shape[0], *down_w.shape[1:]
                    )
            if key.endswith(".diff"):
                target = keymap.map_key(keymap.strip_prefix(key[: -len(".diff")]) + ".weight")
                delta = f.get_tensor(key).float()
            elif key.endswith(".diff_b"):
                target = keymap.map_key(keymap.strip_prefix(key[: -len(".diff_b")]) + ".bias")
                delta = f.get_tensor(key).float()
            if target is None:
                continue  # lora_up (handled with its pair), alpha, metadata
            if target not in params:
                raise keymap.KeyMapError(f"{path.name}: {key} targets {target}, not in the model")
            updates.append((target, delta))
    for target, delta in updates:
        param = params[target]
        if backup is not None and target not in backup:
            backup[target] = param.detach().to("cpu", copy=True)
        if tuple(delta.shape) != tuple(param.shape):
            raise ValueError(
                f"{path.name}: delta for {target} is {tuple(delta.shape)}, "
                f"the weight is {tuple(param.shape)}"
            )
        merged = param.data.float() + scale * delta.to(param.device)
        param.data.copy_(merged.to(param.dtype))
    log.info("fused %d LoRA deltas from %s (scale %.2f)", len(updates), path.name, scale)
    return len(updates)


@torch.no_grad()
def restore(model: torch.nn.Module, backup: dict[str, torch.Tensor]) -> None:
    """Undo `fuse_lora` exactly from its backup."""
    params = dict(model.named_parameters())
    for name, value in backup.items():
        params[name].data.copy_(value.to(params[name].device))
    backup.clear()
