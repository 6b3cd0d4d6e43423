"""Speed and memory options for the transformer, each a no-op (with a note) where unsupported.

- fp8 weight storage: diffusers' layerwise casting (weights stored as float8_e4m3fn, each layer
  upcast to the compute dtype when it runs; norms, embeddings and modulation stay as they are).
- block offload: diffusers' group offloading, one block at a time on a CUDA stream (low_vram).
- attention backend: the profile's preferences in order (SageAttention or FlashAttention 3
  from the kernel hub, then installed flash-attn / SageAttention), on CUDA; else PyTorch SDPA.
  Every backend that could not load is named in the note, so status.json says what ran.
- compile: `torch.compile` of the repeated blocks, CUDA only.
"""

from __future__ import annotations

import importlib.util

import torch


def fp8_storage(model, compute_dtype: torch.dtype) -> str:
    compute = compute_dtype if compute_dtype != torch.float8_e4m3fn else torch.bfloat16
    model.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=compute)
    return f"fp8 weight storage (compute {str(compute).removeprefix('torch.')})"


def block_offload(model, device: torch.device) -> str:
    model.enable_group_offload(
        onload_device=device,
        offload_device=torch.device("cpu"),
        offload_type="block_level",
        num_blocks_per_group=1,
        use_stream=True,
    )
    return "block offload (one transformer block on the GPU at a time)"


def attention_backend(model, device: torch.device, wanted: tuple[str, ...] = ()) -> str:
    """Set the first backend of `wanted` that loads (else the installed flash-attn or Sage);
    the note names the one that runs and why each one before it did not."""
    if device.type != "cuda":
        return "attention: PyTorch SDPA (no CUDA)"
    choices = list(wanted)
    for module, name in (("flash_attn_interface", "_flash_3"), ("flash_attn", "flash")):
        if name not in choices and importlib.util.find_spec(module):
            choices.append(name)
    failed = []
    for name in choices:
        try:
            model.set_attention_backend(name)
        except Exception as err:  # a backend that cannot run here: try the next one
            failed.append(f"{name} unavailable ({type(err).__name__}: {str(err)[:80]})")
            continue
        return "; ".join([f"attention: {name}", *failed])
    return "; ".join(["attention: PyTorch SDPA", *failed])


def compile_blocks(model, device: torch.device) -> str:
    if device.type != "cuda":
        return "compile skipped (no CUDA)"
    model.compile_repeated_blocks(fullgraph=False, dynamic=True)
    return "torch.compile of the transformer blocks"
