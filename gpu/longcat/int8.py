"""The published INT8 DiT of v1.5 (`base_model_int8/`): weight-only, per output channel.

Facts from the reference (`longcat_video/modules/quantization.py`): every `nn.Linear` of the DiT
except `final_layer.linear` becomes a `QuantizedLinear` holding `weight_int8` [out, in] (int8),
`weight_scale` [out] (float32, max |w| / 127 per row) and, where the Linear had one, `bias`
(bf16), all as buffers; the forward dequantizes to the input's dtype and runs `F.linear`. The
shards are `quantized_model-*.safetensors`. The DMD LoRA stays a side branch on these layers
(its update cannot be folded into int8 weights without re-quantizing them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SKIP = ("final_layer.linear",)


class QuantizedLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, bias: bool) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer(
            "weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8)
        )
        self.register_buffer("weight_scale", torch.zeros(out_features, dtype=torch.float32))
        if bias:
            self.register_buffer("bias", torch.zeros(out_features, dtype=torch.bfloat16))
        else:
            self.bias = None
        self.lora: tuple[torch.Tensor, torch.Tensor, float] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        weight = self.weight_int8.to(dtype) * self.weight_scale.to(dtype)[:, None]
        bias = None if self.bias is None else self.bias.to(dtype)
        out = F.linear(x, weight, bias)
        if self.lora is not None:
            down, up, scale = self.lora
            out = out + F.linear(F.linear(x, down.to(dtype)), up.to(dtype)) * scale
        return out

    def add_lora(self, down: torch.Tensor, up: torch.Tensor, scale: float) -> None:
        """A low-rank side branch, x -> up(down(x)) * scale, added to the output."""
        self.lora = (down.to(self.weight_scale.device), up.to(self.weight_scale.device), scale)


def quantized_layout(model: nn.Module) -> nn.Module:
    """Replace the Linears the reference quantizes with empty `QuantizedLinear`s (in place)."""
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.Linear) and not any(s in name for s in SKIP):
            parent_name, _, attr = name.rpartition(".")
            parent = model.get_submodule(parent_name) if parent_name else model
            q = QuantizedLinear(module.in_features, module.out_features, module.bias is not None)
            setattr(parent, attr, q)
    return model


@torch.no_grad()
def quantize(model: nn.Module) -> dict[str, torch.Tensor]:
    """The INT8 state dict of a bf16/fp32 model, as the reference's `quantize_model` writes it."""
    state = {}
    quantized = {
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and not any(s in name for s in SKIP)
    }
    for key, value in model.state_dict().items():
        module, _, param = key.rpartition(".")
        if module not in quantized:
            state[key] = value
        elif param == "weight":
            scale = value.float().abs().amax(dim=1).clamp(min=1e-8) / 127.0
            state[f"{module}.weight_int8"] = (
                (value.float() / scale[:, None]).round().clamp(-128, 127).to(torch.int8)
            )
            state[f"{module}.weight_scale"] = scale
        else:
            state[key] = value.to(torch.bfloat16)
    return state
