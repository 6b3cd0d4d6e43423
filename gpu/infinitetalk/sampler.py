"""The reference's sampler: flow-matching Euler steps with shift, text + audio guidance.

Facts from `wan/multitalk.py` (`generate_infinitetalk`):

- timesteps: `linspace(1000, 1, steps)` then a final 0, each shifted as
  `t' = shift * s / (1 + (shift - 1) * s)` with `s = t / 1000` (shift 7 at 480p, 11 at 720p,
  2 with the FusioniX LoRA); the model sees t' on the 0..1000 scale;
- the model predicts the velocity v = noise - x0; an Euler step is `x -= v * (t_i - t_i+1) / 1000`;
- guidance with text scale g_t and audio scale g_a uses three passes,
  `uncond + g_t * (cond - drop_text) + g_a * (drop_text - uncond)`, where "drop text" swaps in
  the negative prompt and "uncond" also zeroes the wav2vec2 features (the audio projection still
  runs on the zeros); when g_t == 1 it uses two, `drop_audio + g_a * (cond - drop_audio)`;
- the first latent frames are conditioning (the reference image, or the motion frames carried
  over from the previous clip) and are put back, clean, after every step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

NUM_TRAIN_TIMESTEPS = 1000

Velocity = Callable[[torch.Tensor, torch.Tensor, str], torch.Tensor]
"""velocity(latents, t, branch) for branch in "cond", "drop_text", "drop_audio", "uncond"."""


def timesteps(steps: int, shift: float) -> list[float]:
    """The shifted schedule: `steps` model timesteps plus the final 0 (0..1000 scale)."""
    if steps < 1:
        raise ValueError("at least one sampling step is needed")
    raw = [*list(np.linspace(NUM_TRAIN_TIMESTEPS, 1, steps, dtype=np.float32)), 0.0]
    out = []
    for t in raw:
        s = float(t) / NUM_TRAIN_TIMESTEPS
        out.append(shift * s / (1 + (shift - 1) * s) * NUM_TRAIN_TIMESTEPS)
    return out


@dataclass(frozen=True)
class Guidance:
    text: float
    audio: float

    @property
    def branches(self) -> tuple[str, ...]:
        if math.isclose(self.text, 1.0):
            return ("cond", "drop_audio")
        return ("cond", "drop_text", "uncond")

    def combine(self, preds: dict[str, torch.Tensor]) -> torch.Tensor:
        if math.isclose(self.text, 1.0):
            base = preds["drop_audio"]
            return base + self.audio * (preds["cond"] - base)
        uncond, drop_text = preds["uncond"], preds["drop_text"]
        return uncond + self.text * (preds["cond"] - drop_text) + self.audio * (drop_text - uncond)


def sample(
    velocity: Velocity,
    noise: torch.Tensor,
    condition: torch.Tensor,
    steps: int,
    shift: float,
    guidance: Guidance,
    on_step: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """Denoise `noise` [C, T, H, W]; `condition` [C, k, H, W] pins the first k latent frames."""
    schedule = timesteps(steps, shift)
    latents = noise.clone()
    k = condition.shape[1]
    for i in range(steps):
        latents[:, :k] = condition
        t = torch.tensor([schedule[i]], device=latents.device, dtype=torch.float32)
        preds = {branch: velocity(latents, t, branch) for branch in guidance.branches}
        v = guidance.combine(preds).to(latents.dtype)
        dt = (schedule[i] - schedule[i + 1]) / NUM_TRAIN_TIMESTEPS
        latents = latents - v * dt
        latents[:, :k] = condition
        if on_step:
            on_step(i + 1, steps)
    return latents


def frame_plan(total: int, clip: int, motion: int) -> list[tuple[int, int]]:
    """(start frame, frame count) of each clip; later clips begin with `motion` overlap frames.

    Up to one clip: a single clip of 4n+1 frames. Beyond: every clip is a full `clip` frames, as
    the reference renders them; the last one runs past `total` (on mirrored audio, see
    `mirror_past_end`) and is trimmed. Every frame of `total` is covered once by new frames.
    """
    if total <= clip:
        return [(0, _four_n_plus_one(total))]
    plan = [(0, clip)]
    while plan[-1][0] + clip < total:
        plan.append((plan[-1][0] + clip - motion, clip))
    return plan


def mirror_past_end(embedding: torch.Tensor, end: int) -> torch.Tensor:
    """The audio features extended to cover frames up to `end`, as the reference's last clip:
    when `end` reaches the audio's length N, the last `end - N + 3` frames are appended in
    reverse order (the speech played backwards from its end), so the model hears speech-like
    sound, not a frozen frame, in the part of the clip that is trimmed away."""
    length = embedding.shape[0]
    if end < length:
        return embedding
    missing = end - length + 3
    return torch.cat([embedding, torch.flip(embedding[-missing:], dims=[0])], dim=0)


def _four_n_plus_one(frames: int) -> int:
    return (max(frames, 1) - 1 + 3) // 4 * 4 + 1


def snap_frames(frames: int) -> int:
    """The largest 4n+1 not above `frames` (so the video never outlasts its audio)."""
    return (max(frames, 1) - 1) // 4 * 4 + 1


# --- colour correction (reference: match_and_blend_colors, strength 1.0 by default) ---------

_D65 = torch.tensor([0.95047, 1.0, 1.08883])
_RGB2XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)


def _rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1], channels last -> CIE Lab (D65)."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = (linear @ _RGB2XYZ.T.to(rgb)) / _D65.to(rgb)
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    lightness = 116 * f[..., 1] - 16
    a = 500 * (f[..., 0] - f[..., 1])
    b = 200 * (f[..., 1] - f[..., 2])
    return torch.stack([lightness, a, b], dim=-1)


def _lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    fy = (lab[..., 0] + 16) / 116
    fx = fy + lab[..., 1] / 500
    fz = fy - lab[..., 2] / 200
    f = torch.stack([fx, fy, fz], dim=-1)
    xyz = torch.where(f > 0.2068966, f**3, (f - 16 / 116) / 7.787) * _D65.to(lab)
    linear = (xyz @ torch.linalg.inv(_RGB2XYZ).T.to(lab)).clamp(min=0)
    rgb = torch.where(
        linear > 0.0031308, 1.055 * linear.clamp(min=1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear
    )
    return rgb.clamp(0, 1)


def match_colors(frames: torch.Tensor, reference: torch.Tensor, strength: float) -> torch.Tensor:
    """Move each frame's Lab mean/std to the reference image's, blended by `strength`.

    frames [T, H, W, 3] and reference [H, W, 3], both RGB in [0, 1].
    """
    if strength <= 0:
        return frames
    ref = _rgb_to_lab(reference.double()).reshape(-1, 3)
    ref_mean, ref_std = ref.mean(0), ref.std(0, unbiased=False)
    lab = _rgb_to_lab(frames.double())
    flat = lab.reshape(lab.shape[0], -1, 3)
    mean = flat.mean(1, keepdim=True)
    std = flat.std(1, unbiased=False, keepdim=True)
    moved = torch.where(
        std > 0, (flat - mean) * (ref_std / std.clamp(min=1e-12)) + ref_mean, ref_mean
    )
    corrected = _lab_to_rgb(moved.reshape(lab.shape))
    out = (1 - strength) * frames.double() + strength * corrected
    return out.to(frames.dtype)
