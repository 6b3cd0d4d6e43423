"""The InfiniteTalk transformer: diffusers' Wan I2V transformer plus the audio adapter.

What the adapter adds to Wan2.1-I2V-14B (facts from the reference `multitalk_model.py`):

- `audio_proj`: an MLP from wav2vec2 windows to 32 audio tokens of width 768 per latent frame.
  The first video frame has its own input layer (`proj1`, a 5-frame window); each later latent
  frame covers 4 video frames and gets an 8-entry window (`proj1_vf`): the first frame's window up
  to its centre (3), the two middle frames' centres (2), the last frame's window from its centre
  (3). Then ReLU MLP (`proj2`), `proj3` to 32 x 768, LayerNorm (`norm`, eps 1e-5).
- Per block, after the text/image cross-attention and before the feed-forward:
  `x = x + audio_cross_attn(norm_x(x), audio_tokens)`, where `norm_x` is an affine LayerNorm
  (eps 1e-6, computed in fp32) and the attention runs per latent frame: the tokens of latent frame
  t attend only to the 32 audio tokens of frame t. `q_linear` (dim->dim), `kv_linear`
  (768->2*dim, keys first), `proj` (dim->dim), all with bias; no q/k norm.
- Two speakers (the multi-person weights, same names and shapes): the audio tokens of both
  voices side by side (64 per latent frame), and each query and audio key rotated by a label
  saying whose it is (`speakers`: label RoPE, routed by the portrait's masks).

Everything else (patch embedding, RoPE, time/text/image embedders, modulation, the head) is
diffusers' own code, so attention backends, group offload and layerwise casting work unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import register_to_config
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanTransformer3DModel,
    WanTransformerBlock,
)
from torch import nn

from gpu.infinitetalk import speakers

# Wan2.1-I2V-14B plus the reference's audio defaults (audio_window=5, intermediate_dim=512,
# output_dim=768, context_tokens=32, vae_scale=4, norm_input_visual=True, norm_output_audio=True).
I2V_14B_CONFIG: dict = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 40,
    "attention_head_dim": 128,
    "in_channels": 36,
    "out_channels": 16,
    "text_dim": 4096,
    "freq_dim": 256,
    "ffn_dim": 13824,
    "num_layers": 40,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "eps": 1e-6,
    "image_dim": 1280,
    "added_kv_proj_dim": 5120,
    "rope_max_seq_len": 1024,
    "audio_window": 5,
    "audio_layers": 12,
    "audio_dim": 768,
    "audio_hidden_dim": 512,
    "audio_tokens": 32,
    "audio_context_dim": 768,
    "vae_scale_temporal": 4,
}


class AudioProjection(nn.Module):
    """wav2vec2 windows -> `tokens` audio tokens per latent frame (reference: AudioProjModel)."""

    def __init__(
        self,
        window: int,
        window_latter: int,
        layers: int,
        channels: int,
        hidden: int,
        tokens: int,
        out_dim: int,
    ) -> None:
        super().__init__()
        self.tokens, self.out_dim = tokens, out_dim
        self.proj1 = nn.Linear(window * layers * channels, hidden)
        self.proj1_vf = nn.Linear(window_latter * layers * channels, hidden)
        self.proj2 = nn.Linear(hidden, hidden)
        self.proj3 = nn.Linear(hidden, tokens * out_dim)
        self.norm = FP32LayerNorm(out_dim, eps=1e-5, elementwise_affine=True)

    def forward(self, first: torch.Tensor, latter: torch.Tensor) -> torch.Tensor:
        """first [B, 1, w, L, C], latter [B, T-1, w', L, C] -> [B, T, tokens, out_dim]."""
        head = torch.relu(self.proj1(first.flatten(2)))
        rest = torch.relu(self.proj1_vf(latter.flatten(2)))
        hidden = torch.relu(self.proj2(torch.cat([head, rest], dim=1)))
        tokens = self.proj3(hidden).unflatten(-1, (self.tokens, self.out_dim))
        return self.norm(tokens)


class AudioCrossAttention(nn.Module):
    """Video tokens of each latent frame attend to that frame's audio tokens."""

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_linear = nn.Linear(dim, dim)
        self.kv_linear = nn.Linear(context_dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(
        self,
        x: torch.Tensor,
        audio: torch.Tensor,
        labels: torch.Tensor | None = None,
        voices: int = 1,
    ) -> torch.Tensor:
        """x [B, T*S, dim], audio [B or 1, T, M, context_dim] -> [B, T*S, dim].

        With two voices, `labels` [T*S] are the queries' speaker labels and the M audio tokens
        are the voices' tokens one after the other (see `speakers`).
        """
        batch, seq, dim = x.shape
        frames, tokens = audio.shape[1], audio.shape[2]
        if audio.shape[0] != batch:
            audio = audio.expand(batch, -1, -1, -1)
        per_frame = seq // frames
        head_dim = dim // self.heads
        q = self.q_linear(x).view(batch * frames, per_frame, self.heads, head_dim).transpose(1, 2)
        kv = self.kv_linear(audio.reshape(batch * frames, tokens, -1))
        k, v = kv.view(batch * frames, tokens, 2, self.heads, head_dim).permute(2, 0, 3, 1, 4)
        if labels is not None:
            q = speakers.rotate(q, labels.view(frames, 1, per_frame).repeat(batch, 1, 1))
            k = speakers.rotate(k, speakers.voice_labels(tokens // voices, k.device))
        out = F.scaled_dot_product_attention(q, k.to(q.dtype), v.to(q.dtype))
        out = out.transpose(1, 2).reshape(batch, seq, dim)
        return self.proj(out)


class InfiniteTalkBlock(WanTransformerBlock):
    """A Wan block with the audio cross-attention between the text/image attention and the FFN."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, *args, audio_context_dim: int = 768):
        super().__init__(dim, ffn_dim, num_heads, *args)
        self.audio_cross_attn = AudioCrossAttention(dim, audio_context_dim, num_heads)
        self.norm_x = FP32LayerNorm(dim, 1e-6, elementwise_affine=True)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        audio_tokens: torch.Tensor | None = None,
        speaker_masks: torch.Tensor | None = None,
        voices: int = 1,
    ) -> torch.Tensor:
        """`speaker_masks` [3, tokens of one latent frame] route two voices (see `speakers`)."""
        x = hidden_states
        shift, scale, gate, c_shift, c_scale, c_gate = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)
        h = (self.norm1(x.float()) * (1 + scale) + shift).type_as(x)
        labels = None
        if voices == 2 and speaker_masks is not None:
            labels = self._speaker_labels(h, rotary_emb, speaker_masks)
        x = (x.float() + self.attn1(h, None, None, rotary_emb) * gate).type_as(x)
        h = self.norm2(x.float()).type_as(x)
        x = x + self.attn2(h, encoder_hidden_states, None, None)
        if audio_tokens is not None:
            normed = self.norm_x(x.float()).type_as(x)
            x = x + self.audio_cross_attn(normed, audio_tokens, labels, voices)
        h = (self.norm3(x.float()) * (1 + c_scale) + c_shift).type_as(x)
        return (x.float() + self.ffn(h).float() * c_gate).type_as(x)

    def _speaker_labels(
        self, h: torch.Tensor, rotary_emb: tuple[torch.Tensor, torch.Tensor], masks: torch.Tensor
    ) -> torch.Tensor:
        """The self-attention's own queries and portrait keys -> each token's speaker label."""
        attn, portrait = self.attn1, masks.shape[1]
        q = attn.norm_q(attn.to_q(h)).unflatten(2, (attn.heads, -1))
        k = attn.norm_k(attn.to_k(h[:, :portrait])).unflatten(2, (attn.heads, -1))
        cos, sin = rotary_emb
        q = _wan_rope(q, cos, sin)
        k = _wan_rope(k, cos[:, :portrait], sin[:, :portrait])
        return speakers.labels(speakers.portrait_scores(q, k, masks))


def _wan_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Wan's 3D RoPE as diffusers' attention processor applies it (x [B, S, H, D])."""
    even, odd = x.float().unflatten(-1, (-1, 2)).unbind(-1)
    c, s = cos[..., 0::2].float(), sin[..., 1::2].float()
    return torch.stack([even * c - odd * s, even * s + odd * c], dim=-1).flatten(-2).type_as(x)


def group_audio_windows(
    windows: torch.Tensor, vae_scale: int, window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-frame windows [B, F, w, L, C] (F = 4n+1) -> (first [B,1,w,L,C], latter [B,n,w+3,L,C])."""
    first = windows[:, :1]
    latter = windows[:, 1:].unflatten(1, (-1, vae_scale))
    mid = window // 2
    start = latter[:, :, 0, : mid + 1]
    middle = latter[:, :, 1:-1, mid]
    end = latter[:, :, -1, mid:]
    return first, torch.cat([start, middle, end], dim=2)


class InfiniteTalkTransformer(WanTransformer3DModel):
    """`WanTransformer3DModel` (I2V) extended with InfiniteTalk's audio adapter."""

    _keep_in_fp32_modules: ClassVar[list[str]] = [
        *WanTransformer3DModel._keep_in_fp32_modules,
        "norm_x",
    ]
    _no_split_modules: ClassVar[list[str]] = ["InfiniteTalkBlock"]
    _repeated_blocks: ClassVar[list[str]] = ["InfiniteTalkBlock"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 40,
        attention_head_dim: int = 128,
        in_channels: int = 36,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 13824,
        num_layers: int = 40,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        image_dim: int | None = 1280,
        added_kv_proj_dim: int | None = 5120,
        rope_max_seq_len: int = 1024,
        pos_embed_seq_len: int | None = None,
        audio_window: int = 5,
        audio_layers: int = 12,
        audio_dim: int = 768,
        audio_hidden_dim: int = 512,
        audio_tokens: int = 32,
        audio_context_dim: int = 768,
        vae_scale_temporal: int = 4,
    ) -> None:
        super().__init__(
            patch_size=patch_size,
            num_attention_heads=num_attention_heads,
            attention_head_dim=attention_head_dim,
            in_channels=in_channels,
            out_channels=out_channels,
            text_dim=text_dim,
            freq_dim=freq_dim,
            ffn_dim=ffn_dim,
            num_layers=0,  # our blocks are built below, once
            cross_attn_norm=cross_attn_norm,
            qk_norm=qk_norm,
            eps=eps,
            image_dim=image_dim,
            added_kv_proj_dim=added_kv_proj_dim,
            rope_max_seq_len=rope_max_seq_len,
            pos_embed_seq_len=pos_embed_seq_len,
        )
        self.register_to_config(num_layers=num_layers)
        inner = num_attention_heads * attention_head_dim
        self.blocks = nn.ModuleList(
            [
                InfiniteTalkBlock(
                    inner,
                    ffn_dim,
                    num_attention_heads,
                    qk_norm,
                    cross_attn_norm,
                    eps,
                    added_kv_proj_dim,
                    audio_context_dim=audio_context_dim,
                )
                for _ in range(num_layers)
            ]
        )
        self.audio_proj = AudioProjection(
            window=audio_window,
            window_latter=audio_window + vae_scale_temporal - 1,
            layers=audio_layers,
            channels=audio_dim,
            hidden=audio_hidden_dim,
            tokens=audio_tokens,
            out_dim=audio_context_dim,
        )

    def audio_tokens(self, windows: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
        """wav2vec2 windows [B, F, w, L, C] for F = 4n+1 video frames -> [B, n+1, 32, 768]."""
        cfg = self.config
        if dtype is None:
            dtype = self.patch_embedding.weight.dtype  # the compute dtype (never fp8-stored)
        first, latter = group_audio_windows(
            windows.to(dtype), cfg.vae_scale_temporal, cfg.audio_window
        )
        return self.audio_proj(first, latter)

    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        encoder_hidden_states_image: torch.Tensor | None = None,
        audio_windows: torch.Tensor | None = None,
        audio_tokens: torch.Tensor | None = None,
        speaker_masks: torch.Tensor | None = None,
        cache: TeaCacheBranch | None = None,
        return_dict: bool = False,
        attention_kwargs: dict | None = None,
    ) -> torch.Tensor | Transformer2DModelOutput:
        """Predict the flow velocity; audio comes as windows or as precomputed audio tokens.

        Two voices come as windows [2, F, ...] (batch 1) with `speaker_masks` [3, h, w] on the
        latent grid (speaker 1, speaker 2, background): as the reference, their tokens are put
        side by side and routed by the masks.
        """
        batch, _, frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        pf, ph, pw = frames // p_t, height // p_h, width // p_w

        rotary_emb = self.rope(hidden_states)
        x = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        temb, timestep_proj, context, context_image = self.condition_embedder(
            timestep, encoder_hidden_states, encoder_hidden_states_image
        )
        timestep_proj = timestep_proj.unflatten(1, (6, -1))
        if context_image is not None:
            context = torch.cat([context_image, context], dim=1)
        if audio_tokens is None and audio_windows is not None:
            audio_tokens = self.audio_tokens(audio_windows, x.dtype)
        voices = 1
        if audio_tokens is not None and audio_tokens.shape[0] > batch:
            if batch != 1:
                raise ValueError("two voices are rendered one video at a time (batch 1)")
            voices = audio_tokens.shape[0]
            audio_tokens = torch.cat(audio_tokens.split(1), dim=2)  # [1, T, voices*M, C]
        masks = None
        if voices == 2:
            if speaker_masks is None:
                raise ValueError("two voices need speaker masks (speaker 1, 2, background)")
            masks = speakers.token_masks(speaker_masks, (ph, pw)).to(x.device)
        if audio_tokens is not None:
            if audio_tokens.shape[1] != pf:
                raise ValueError(
                    f"audio covers {audio_tokens.shape[1]} latent frames, the video {pf}"
                )
            audio_tokens = audio_tokens.to(x.dtype)

        if cache is not None and cache.skip(timestep_proj):
            x = x + cache.residual
        else:
            start = x
            for block in self.blocks:
                x = block(x, context, timestep_proj, rotary_emb, audio_tokens, masks, voices)
            if cache is not None:
                cache.residual = x - start

        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (self.norm_out(x.float()) * (1 + scale.to(x.device)) + shift.to(x.device)).type_as(x)
        x = self.proj_out(x)
        x = x.reshape(batch, pf, ph, pw, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        out = x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        return Transformer2DModelOutput(sample=out) if return_dict else out


def config_from_original(original: dict, **overrides) -> dict:
    """Our model config from the reference's `config.json` (WanModel: dim, ffn_dim, ...)."""
    dim = int(original.get("dim", 5120))
    heads = int(original.get("num_heads", 40))
    cfg = dict(I2V_14B_CONFIG)
    cfg.update(
        num_attention_heads=heads,
        attention_head_dim=dim // heads,
        in_channels=int(original.get("in_dim", 36)),
        out_channels=int(original.get("out_dim", 16)),
        text_dim=int(original.get("text_dim", 4096)),
        freq_dim=int(original.get("freq_dim", 256)),
        ffn_dim=int(original.get("ffn_dim", 13824)),
        num_layers=int(original.get("num_layers", 40)),
        eps=float(original.get("eps", 1e-6)),
        added_kv_proj_dim=dim,
    )
    for key in ("image_dim", *[k for k in I2V_14B_CONFIG if k.startswith("audio_")]):
        if key in original:
            cfg[key] = original[key]
    cfg.update(overrides)
    return cfg


class TeaCacheBranch:
    """TeaCache for one guidance branch (reference: `teacache_init`, use_ret_steps=True).

    The block stack is skipped, reusing the last residual, while the accumulated, polynomially
    rescaled relative L1 change of the modulation input stays below `threshold`; the first
    `warmup` steps always compute.
    """

    def __init__(self, threshold: float, coefficients: tuple[float, ...], warmup: int = 5):
        self.threshold, self.coefficients, self.warmup = threshold, coefficients, warmup
        self.calls = 0
        self.accumulated = 0.0
        self.previous: torch.Tensor | None = None
        self.residual: torch.Tensor | None = None
        self.skipped = 0

    def skip(self, modulation: torch.Tensor) -> bool:
        step, self.calls = self.calls, self.calls + 1
        previous, self.previous = self.previous, modulation.detach().clone()
        if previous is None or self.residual is None or step < self.warmup:
            self.accumulated = 0.0
            return False
        change = ((modulation - previous).abs().mean() / previous.abs().mean()).item()
        rescaled = 0.0
        for c in self.coefficients:  # numpy.poly1d order: highest power first
            rescaled = rescaled * change + c
        self.accumulated += rescaled
        if self.accumulated < self.threshold:
            self.skipped += 1
            return True
        self.accumulated = 0.0
        return False
