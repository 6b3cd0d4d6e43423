"""The LongCat-Video-Avatar transformer, module for module as Meituan published it.

diffusers ships no LongCat model, so this is a `ModelMixin` written from the facts of the
reference (`longcat_video/modules/avatar/longcat_video_dit_avatar.py` and the blocks it uses),
with the reference's module names, so the published `config.json` builds it and the published
shards load into it key for key (`keymap.py` checks 0 missing / 0 unexpected / 0 wrong shapes):

- `x_embedder.proj`: a Conv3d patch embedding (1x2x2); `t_embedder.mlp`: a sinusoidal timestep
  (cos then sin, 256 frequencies) through Linear-SiLU-Linear to `adaln_tembed_dim` (512), one per
  latent frame; `y_embedder.y_proj`: UMT5 features through Linear-GELU(tanh)-Linear.
- `blocks.N` (48 at full size, width 4096, 32 heads): per-frame adaLN modulation (6 x width),
  self-attention (`attn.qkv`, RMS q/k norms per head, 3D RoPE, `attn.proj`), text
  cross-attention (`cross_attn`, after the affine `pre_crs_attn_norm`), audio cross-attention
  (`audio_cross_attn`: each latent frame's video tokens attend to that frame's 32 audio tokens,
  RMS q/k norms; its output is LayerNorm-modulated and gated by `audio_adaLN_modulation`), and a
  SwiGLU feed-forward (`ffn.w1/w2/w3`, hidden 2/3 of 4 x width rounded up to 256).
- `audio_proj`: the audio windows of the first frame (5 wide) and of each later latent frame
  (8 wide: 4 video frames) through three Linear layers to 32 tokens of 768 per latent frame.
- `final_layer`: modulated LayerNorm and a Linear back to patches.

Conditioning latents (the portrait, or the frames carried over from the previous segment) run at
timestep 0 and see only themselves; their text and audio cross-attention outputs are zero, as in
the reference. The reference's KV cache of those clean latents is an equivalent shortcut this
module does not take (it recomputes them each step). Attention runs through PyTorch's SDPA.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

# The published v1.5 `base_model/config.json` values that define shapes; v1.0's audio adapter
# reads wav2vec2-base (12 layers of 768) instead of Whisper-large-v3's 5 layer groups of 1280.
FULL_SIZE: dict = {
    "in_channels": 16,
    "out_channels": 16,
    "hidden_size": 4096,
    "depth": 48,
    "num_heads": 32,
    "caption_channels": 4096,
    "mlp_ratio": 4,
    "adaln_tembed_dim": 512,
    "frequency_embedding_size": 256,
    "patch_size": (1, 2, 2),
    "audio_window": 5,
    "audio_block": 5,
    "audio_channel": 1280,
    "intermediate_dim": 512,
    "output_dim": 768,
    "context_tokens": 32,
    "vae_scale": 4,
    "audio_prenorm": False,
}
V10_AUDIO = {"audio_block": 12, "audio_channel": 768}


class RMSNormFP32(nn.Module):
    """RMS norm over the last axis, computed in float32 (reference: RMSNorm_FP32)."""

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        out = (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return out * self.weight


class LayerNormFP32(nn.LayerNorm):
    """LayerNorm computed in float32, returned in the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else self.weight.float()
        bias = None if self.bias is None else self.bias.float()
        return F.layer_norm(x.float(), self.normalized_shape, weight, bias, self.eps).to(x.dtype)


def fp32_linear(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """layer(x) computed in float32, whatever the layer stores (the reference runs its
    modulation, timestep and output layers under float32 autocast)."""
    x = x.float()
    if isinstance(layer, nn.Linear):
        bias = None if layer.bias is None else layer.bias.float()
        return F.linear(x, layer.weight.float(), bias)
    return layer(x).float()  # an INT8 layer dequantizes to the input's dtype


def fp32_modulation(seq: nn.Sequential, t: torch.Tensor) -> torch.Tensor:
    """SiLU then Linear (an adaLN modulation) in float32."""
    return fp32_linear(seq[1], F.silu(t.float()))


def modulate(norm: nn.Module, x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor):
    """norm(x) * (1 + scale) + shift in float32; x [B, T, S, C], shift/scale [B, T, 1, C]."""
    return (norm(x.float()) * (scale + 1) + shift).to(x.dtype)


class PatchEmbed3D(nn.Module):
    def __init__(self, patch_size: tuple[int, ...], in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class TimestepEmbedder(nn.Module):
    def __init__(self, t_embed_dim: int, frequency_embedding_size: int = 256) -> None:
        super().__init__()
        self.frequency_embedding_size = frequency_embedding_size
        self.mlp = nn.Sequential(
            nn.Linear(frequency_embedding_size, t_embed_dim),
            nn.SiLU(),
            nn.Linear(t_embed_dim, t_embed_dim),
        )

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)
        args = t.float()[:, None] * freqs.to(t.device)[None]
        embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return fp32_linear(self.mlp[2], F.silu(fp32_linear(self.mlp[0], embedding)))


class CaptionEmbedder(nn.Module):
    def __init__(self, in_channels: int, hidden_size: int) -> None:
        super().__init__()
        self.y_proj = nn.Sequential(
            nn.Linear(in_channels, hidden_size),
            nn.GELU(approximate="tanh"),
            nn.Linear(hidden_size, hidden_size),
        )

    def forward(self, caption: torch.Tensor) -> torch.Tensor:
        return self.y_proj(caption)


class FeedForwardSwiGLU(nn.Module):
    def __init__(self, dim: int, hidden_dim: int, multiple_of: int = 256) -> None:
        super().__init__()
        hidden = int(2 * hidden_dim / 3)
        hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def rope_3d(
    head_dim: int, grid: tuple[int, int, int], ref_index: int | None, device
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [T*H*W, head_dim] of the reference's 3D RoPE (interleaved pairs, base 10000).

    The head splits into time (head_dim - 4*(head_dim//6)), height and width (2*(head_dim//6)
    each). With a reference latent in front, its time position is `ref_index` and the others
    count from 0.
    """
    frames, height, width = grid
    d_h = 2 * (head_dim // 6)
    d_t = head_dim - 2 * d_h

    def axis(positions: torch.Tensor, dim: int) -> torch.Tensor:
        freqs = 1.0 / (10000 ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        return (positions[:, None] * freqs[None]).repeat_interleave(2, dim=-1)

    if ref_index is None:
        t_pos = torch.arange(frames, dtype=torch.float32)
    else:
        t_pos = torch.cat([torch.tensor([float(ref_index)]), torch.arange(frames - 1).float()])
    ft = axis(t_pos, d_t)[:, None, None].expand(frames, height, width, -1)
    fh = axis(torch.arange(height).float(), d_h)[None, :, None].expand(frames, height, width, -1)
    fw = axis(torch.arange(width).float(), d_h)[None, None, :].expand(frames, height, width, -1)
    freqs = torch.cat([ft, fh, fw], dim=-1).reshape(frames * height * width, head_dim)
    return freqs.cos().to(device), freqs.sin().to(device)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    xf = x.float()
    return (xf * cos + _rotate_half(xf) * sin).type_as(x)


class Attention(nn.Module):
    """Self-attention with the reference's partition of conditioning and noisy tokens."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.q_norm = RMSNormFP32(self.head_dim)
        self.k_norm = RMSNormFP32(self.head_dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, rope, layout: FrameLayout) -> torch.Tensor:
        batch, seq, dim = x.shape
        qkv = self.qkv(x).view(batch, seq, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = apply_rope(self.q_norm(q), *rope), apply_rope(self.k_norm(k), *rope)
        per = seq // layout.frames
        parts = []
        for q_frames, k_frames in layout.attention_groups():
            qs = q[:, :, q_frames[0] * per : q_frames[1] * per]
            ks = torch.cat([k[:, :, a * per : b * per] for a, b in k_frames], dim=2)
            vs = torch.cat([v[:, :, a * per : b * per] for a, b in k_frames], dim=2)
            parts.append(F.scaled_dot_product_attention(qs, ks, vs))
        out = torch.cat(parts, dim=2).transpose(1, 2).reshape(batch, seq, dim)
        return self.proj(out)


class MultiHeadCrossAttention(nn.Module):
    """Noisy tokens attend to the text; conditioning tokens get zeros."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(dim, dim * 2)
        self.proj = nn.Linear(dim, dim)
        self.q_norm = RMSNormFP32(self.head_dim)
        self.k_norm = RMSNormFP32(self.head_dim)

    def forward(self, x, text, text_mask, first_noisy: int) -> torch.Tensor:
        batch, _, dim = x.shape
        noisy = x[:, first_noisy:]
        q = self.q_norm(self.q_linear(noisy).unflatten(-1, (self.num_heads, self.head_dim)))
        kv = self.kv_linear(text).unflatten(-1, (2, self.num_heads, self.head_dim))
        k, v = self.k_norm(kv[:, :, 0]), kv[:, :, 1]
        mask = None if text_mask is None else text_mask[:, None, None, :].bool()
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask
        )
        out = self.proj(out.transpose(1, 2).reshape(batch, -1, dim))
        return torch.cat([out.new_zeros(batch, first_noisy, dim), out], dim=1)


class SingleStreamAttention(nn.Module):
    """Each noisy latent frame's tokens attend to that frame's audio tokens (one speaker)."""

    def __init__(self, dim: int, context_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q_linear = nn.Linear(dim, dim)
        self.q_norm = RMSNormFP32(self.head_dim)
        self.proj = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(context_dim, dim * 2)
        self.k_norm = RMSNormFP32(self.head_dim)

    def forward(self, x: torch.Tensor, audio: torch.Tensor, frames: int) -> torch.Tensor:
        """x [B, frames*S, C] (noisy tokens only), audio [B*frames, M, C_a] -> like x."""
        batch, seq, dim = x.shape
        per = seq // frames
        q = self.q_linear(x).view(batch * frames, per, self.num_heads, self.head_dim)
        q = self.q_norm(q).transpose(1, 2)
        kv = self.kv_linear(audio).unflatten(-1, (2, self.num_heads, self.head_dim))
        k, v = self.k_norm(kv[:, :, 0]).transpose(1, 2), kv[:, :, 1].transpose(1, 2)
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(batch, seq, dim))


class FrameLayout:
    """Which latent frames are the reference, the conditioning and the noise of one call."""

    def __init__(
        self,
        frames: int,
        cond: int,
        ref: int = 0,
        ref_index: int | None = None,
        mask_range: int = 0,
    ) -> None:
        self.frames, self.cond, self.ref = frames, cond, ref
        self.ref_index, self.mask_range = ref_index, mask_range

    def attention_groups(self) -> list[tuple[tuple[int, int], list[tuple[int, int]]]]:
        """(query frames, key frame ranges) per group, in frame order (reference: Attention)."""
        n, c, r = self.frames, self.cond, self.ref
        if c == 0:
            return [((0, n), [(0, n)])]
        groups: list[tuple[tuple[int, int], list[tuple[int, int]]]] = []
        if r:
            groups.append(((0, r), [(0, r)]))
        groups.append(((r, c), [(r, c)]))
        if c == n:
            return groups
        noisy = n - c
        start = end = 0
        if r and self.ref_index is not None and self.mask_range > 0:
            start = self.ref_index - self.mask_range - c + r
            end = self.ref_index + self.mask_range - c + r + 1
        if 0 <= start < end <= noisy:
            # Noisy frames near the reference's time position do not see it (fewer repeats).
            groups.append(((c, c + start), [(0, n)]))
            groups.append(((c + start, c + end), [(r, n)]))
            groups.append(((c + end, n), [(0, n)]))
        else:
            groups.append(((c, n), [(0, n)]))
        return [g for g in groups if g[0][1] > g[0][0]]


class LongCatAvatarBlock(nn.Module):
    def __init__(self, hidden: int, heads: int, mlp_ratio: int, tdim: int, output_dim: int,
                 audio_prenorm: bool) -> None:  # fmt: skip
        super().__init__()
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(tdim, 6 * hidden))
        self.audio_adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(tdim, 3 * hidden))
        self.mod_norm_attn = LayerNormFP32(hidden, eps=1e-6, elementwise_affine=False)
        self.mod_norm_ffn = LayerNormFP32(hidden, eps=1e-6, elementwise_affine=False)
        self.pre_crs_attn_norm = LayerNormFP32(hidden, eps=1e-6, elementwise_affine=True)
        self.pre_video_crs_attn_norm = LayerNormFP32(hidden, eps=1e-6, elementwise_affine=True)
        self.pre_audio_crs_attn_norm = (
            LayerNormFP32(output_dim, eps=1e-6, elementwise_affine=True)
            if audio_prenorm
            else nn.Identity()
        )
        self.attn = Attention(hidden, heads)
        self.cross_attn = MultiHeadCrossAttention(hidden, heads)
        self.audio_cross_attn = SingleStreamAttention(hidden, output_dim, heads)
        self.ffn = FeedForwardSwiGLU(hidden, hidden * mlp_ratio)

    def forward(self, x, text, text_mask, t, rope, layout: FrameLayout, audio) -> torch.Tensor:
        batch, seq, dim = x.shape
        frames, cond = layout.frames, layout.cond
        per = seq // frames
        mods = fp32_modulation(self.adaLN_modulation, t)
        shift, scale, gate, shift_f, scale_f, gate_f = mods.unsqueeze(2).chunk(6, dim=-1)
        h = modulate(self.mod_norm_attn, x.view(batch, frames, per, dim), shift, scale)
        attn = self.attn(h.view(batch, seq, dim), rope, layout)
        x = (x.float() + (gate * attn.view(batch, frames, per, dim)).view(batch, seq, dim)).to(
            x.dtype
        )
        x = x + self.cross_attn(self.pre_crs_attn_norm(x), text, text_mask, cond * per)

        audio_mods = fp32_modulation(self.audio_adaLN_modulation, t[:, cond:])
        a_shift, a_scale, a_gate = audio_mods.unsqueeze(2).chunk(3, dim=-1)
        audio = audio.unflatten(0, (batch, frames))[:, cond:].flatten(0, 1)
        noisy = self.audio_cross_attn(
            self.pre_video_crs_attn_norm(x)[:, cond * per :],
            self.pre_audio_crs_attn_norm(audio),
            frames - cond,
        )
        noisy = modulate(
            self.mod_norm_attn, noisy.view(batch, frames - cond, per, dim), a_shift, a_scale
        )
        added = (a_gate * noisy.float()).view(batch, -1, dim)
        added = torch.cat([added.new_zeros(batch, cond * per, dim), added], dim=1)
        x = (x.float() + added).to(x.dtype)

        h = modulate(self.mod_norm_ffn, x.view(batch, frames, per, dim), shift_f, scale_f)
        out = self.ffn(h.view(batch, seq, dim))
        return (x.float() + (gate_f * out.view(batch, frames, per, dim)).view(batch, seq, dim)).to(
            x.dtype
        )


class AudioProjModel(nn.Module):
    """Audio windows -> `context_tokens` tokens of `output_dim` per latent frame."""

    def __init__(self, seq_len: int, seq_len_vf: int, blocks: int, channels: int,
                 intermediate_dim: int, output_dim: int, context_tokens: int) -> None:  # fmt: skip
        super().__init__()
        self.context_tokens, self.output_dim = context_tokens, output_dim
        self.proj1 = nn.Linear(seq_len * blocks * channels, intermediate_dim)
        self.proj1_vf = nn.Linear(seq_len_vf * blocks * channels, intermediate_dim)
        self.proj2 = nn.Linear(intermediate_dim, intermediate_dim)
        self.proj3 = nn.Linear(intermediate_dim, context_tokens * output_dim)
        self.norm = nn.LayerNorm(output_dim)

    def forward(self, first: torch.Tensor, latter: torch.Tensor) -> torch.Tensor:
        head = torch.relu(self.proj1(first.flatten(2)))
        rest = torch.relu(self.proj1_vf(latter.flatten(2)))
        hidden = torch.relu(self.proj2(torch.cat([head, rest], dim=1)))
        tokens = self.proj3(hidden).unflatten(-1, (self.context_tokens, self.output_dim))
        return self.norm(tokens)


class FinalLayer(nn.Module):
    def __init__(self, hidden: int, num_patch: int, out_channels: int, tdim: int) -> None:
        super().__init__()
        self.norm_final = LayerNormFP32(hidden, eps=1e-6, elementwise_affine=False)
        self.linear = nn.Linear(hidden, num_patch * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(tdim, 2 * hidden))

    def forward(self, x: torch.Tensor, t: torch.Tensor, frames: int) -> torch.Tensor:
        batch, seq, dim = x.shape
        shift, scale = fp32_modulation(self.adaLN_modulation, t).unsqueeze(2).chunk(2, dim=-1)
        h = modulate(self.norm_final, x.view(batch, frames, -1, dim).float(), shift, scale)
        return fp32_linear(self.linear, h.view(batch, seq, dim))


class LongCatAvatarTransformer(ModelMixin, ConfigMixin):
    """LongCat-Video-Avatar's DiT (reference: LongCatVideoAvatarTransformer3DModel)."""

    _no_split_modules: ClassVar[list[str]] = ["LongCatAvatarBlock"]
    _repeated_blocks: ClassVar[list[str]] = ["LongCatAvatarBlock"]
    _keep_in_fp32_modules: ClassVar[list[str]] = []

    @register_to_config
    def __init__(
        self,
        in_channels: int = 16,
        out_channels: int = 16,
        hidden_size: int = 4096,
        depth: int = 48,
        num_heads: int = 32,
        caption_channels: int = 4096,
        mlp_ratio: int = 4,
        adaln_tembed_dim: int = 512,
        frequency_embedding_size: int = 256,
        patch_size: tuple[int, ...] = (1, 2, 2),
        text_tokens_zero_pad: bool = False,
        audio_window: int = 5,
        audio_block: int = 12,
        audio_channel: int = 768,
        intermediate_dim: int = 512,
        output_dim: int = 768,
        context_tokens: int = 32,
        vae_scale: int = 4,
        audio_prenorm: bool = False,
        class_range: int = 24,
        class_interval: int = 4,
        # Attention kernels and context parallelism of the reference: accepted, not used here.
        enable_flashattn3: bool = False,
        enable_flashattn2: bool = False,
        enable_xformers: bool = False,
        enable_bsa: bool = False,
        bsa_params: dict | None = None,
        cp_split_hw: list[int] | None = None,
    ) -> None:
        super().__init__()
        patch_size = tuple(patch_size)
        self.x_embedder = PatchEmbed3D(patch_size, in_channels, hidden_size)
        self.t_embedder = TimestepEmbedder(adaln_tembed_dim, frequency_embedding_size)
        self.y_embedder = CaptionEmbedder(caption_channels, hidden_size)
        self.blocks = nn.ModuleList(
            [
                LongCatAvatarBlock(
                    hidden_size, num_heads, mlp_ratio, adaln_tembed_dim, output_dim, audio_prenorm
                )
                for _ in range(depth)
            ]
        )
        self.audio_proj = AudioProjModel(
            audio_window,
            audio_window + vae_scale - 1,
            audio_block,
            audio_channel,
            intermediate_dim,
            output_dim,
            context_tokens,
        )
        self.final_layer = FinalLayer(
            hidden_size, math.prod(patch_size), out_channels, adaln_tembed_dim
        )

    def audio_tokens(self, windows: torch.Tensor) -> torch.Tensor:
        """Audio windows [B, F, w, blocks, C] for F = 4n+1 video frames -> [B, n+1, M, C_out]."""
        scale, mid = self.config.vae_scale, self.config.audio_window // 2
        windows = windows.to(self.x_embedder.proj.weight.dtype)  # the compute dtype
        first = windows[:, :1]
        latter = windows[:, 1:].unflatten(1, (-1, scale))
        grouped = torch.cat(
            [latter[:, :, 0, : mid + 1], latter[:, :, 1:-1, mid], latter[:, :, -1, mid:]], dim=2
        )
        return self.audio_proj(first, grouped)

    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        audio_windows: torch.Tensor,
        encoder_attention_mask: torch.Tensor | None = None,
        layout: FrameLayout | None = None,
    ) -> torch.Tensor:
        """Flow prediction [B, C, T, H, W] (float32) for latents [B, C, T, H, W].

        timestep [B, T] (0..1000, conditioning frames at 0); text [B, L, caption_channels] with
        its mask [B, L]; audio_windows [B, F, w, blocks, C] for the F video frames of the
        non-reference latents.
        """
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        grid = (frames // p_t, height // p_h, width // p_w)
        layout = layout or FrameLayout(grid[0], 0)
        dtype = self.x_embedder.proj.weight.dtype
        x = self.x_embedder(hidden_states.to(dtype))
        t = self.t_embedder(timestep.flatten()).view(batch, grid[0], -1)

        text = self.y_embedder(encoder_hidden_states.to(dtype))
        mask = encoder_attention_mask
        if self.config.text_tokens_zero_pad and mask is not None:
            text, mask = text * mask[:, :, None].to(text.dtype), None

        audio = self.audio_tokens(audio_windows)
        if layout.ref:
            audio = torch.cat([audio[:, :1], audio], dim=1)
        audio = audio[:, -grid[0] :].flatten(0, 1).to(dtype)

        ref_index = layout.ref_index if layout.ref else None
        rope = rope_3d(x.shape[-1] // self.config.num_heads, grid, ref_index, x.device)
        for block in self.blocks:
            x = block(x, text, mask, t, rope, layout, audio)
        x = self.final_layer(x, t, grid[0])
        out_c = self.config.out_channels
        x = x.view(batch, *grid, p_t, p_h, p_w, out_c).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.reshape(batch, out_c, frames, height, width).float()
