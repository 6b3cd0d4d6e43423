"""Speed and memory options for the transformer, each a no-op (with a note) where unsupported.

- fp8 weight storage: diffusers' layerwise casting (weights stored as float8_e4m3fn, each layer
  upcast to the compute dtype when it runs; norms, embeddings and modulation stay as they are).
- block offload: diffusers' group offloading, one block at a time on a CUDA stream (low_vram).
- attention backend: flash-attn or SageAttention when installed, on CUDA; else PyTorch SDPA.
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


def attention_backend(model, device: torch.device, wanted: str | None = None) -> str:
    if device.type != "cuda":
        return "attention: PyTorch SDPA (no CUDA)"
    choices = [wanted] if wanted else []
    if importlib.util.find_spec("flash_attn_interface"):
        choices.append("_flash_3")
    if importlib.util.find_spec("flash_attn"):
        choices.append("flash")
    if importlib.util.find_spec("sageattention"):
        choices.append("sage")
    for name in choices:
        try:
            model.set_attention_backend(name)
            return f"attention: {name}"
        except Exception as err:  # a backend that cannot run here: try the next one
            last = f"{name} unavailable ({type(err).__name__})"
    return "attention: PyTorch SDPA" + (f"; {last}" if choices else "")


def compile_blocks(model, device: torch.device) -> str:
    if device.type != "cuda":
        return "compile skipped (no CUDA)"
    model.compile_repeated_blocks(fullgraph=False, dynamic=True)
    return "torch.compile of the transformer blocks"
