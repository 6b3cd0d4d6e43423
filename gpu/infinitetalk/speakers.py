"""Two speakers in the transformer: which video tokens listen to which voice (label RoPE).

Facts from the reference (MeiGen-AI/InfiniteTalk `wan/multitalk.py`, `wan/modules/attention.py`
`SingleStreamMutiAttention`, `wan/utils/multitalk_utils.py`):

- Three masks on the portrait: speaker 1, speaker 2, and the background (neither). Drawn at the
  image's own size, resized (nearest) and centre-cropped like the portrait, nearest-sampled to
  the latent grid, then to the token grid inside the model.
- In every block, each video token's self-attention query is compared with the keys of the
  first latent frame (the portrait): softmax over those keys, summed inside each mask and
  divided by the mask's size, averaged over heads. That gives each token a score per mask.
- Each speaker's score is rescaled from its own min..max to a label range, 0..4 for speaker 1
  and 20..24 for speaker 2; the background is 12. A token takes the value of the mask it
  scores highest on.
- The audio cross-attention then rotates each query by its label (1D RoPE, interleaved pairs,
  base 10000), and the audio keys by their speaker's centre: 2 for speaker 1's 32 tokens, 22
  for speaker 2's. Tokens near a speaker's label attend to that speaker's voice.
- With one voice (one speaker, and the no-audio guidance passes of two) none of this runs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

CLASS_RANGE = 24
CLASS_INTERVAL = 4
LABELS = ((0.0, float(CLASS_INTERVAL)), (float(CLASS_RANGE - CLASS_INTERVAL), float(CLASS_RANGE)))
BACKGROUND = float(CLASS_RANGE // 2)


def portrait_masks(boxes, source_size: tuple[int, int], width: int, height: int) -> torch.Tensor:
    """[3, height/8, width/8] float masks (speaker 1, speaker 2, background) on the latent grid.

    `boxes` are (x0, y0, x1, y1) in the source image's pixels; `source_size` is (width, height).
    """
    src_w, src_h = source_size
    masks = torch.zeros(3, src_h, src_w)
    for index, (x0, y0, x1, y1) in enumerate(boxes):
        masks[index, y0:y1, x0:x1] = 1
    masks[2] = (masks[0] + masks[1] == 0).float()
    scale = max(height / src_h, width / src_w)
    new_h, new_w = math.ceil(scale * src_h), math.ceil(scale * src_w)
    resized = F.interpolate(masks[None], size=(new_h, new_w), mode="nearest")[0]
    top, left = round((new_h - height) / 2), round((new_w - width) / 2)  # torchvision center_crop
    cropped = resized[:, top : top + height, left : left + width]
    latent = F.interpolate(cropped[None], size=(height // 8, width // 8), mode="nearest")[0]
    return (latent > 0).float()


def token_masks(masks: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Latent-grid masks [3, h, w] -> [3, tokens of one latent frame] (nearest, as 0/1)."""
    small = F.interpolate(masks[None].float(), size=grid, mode="nearest")[0] > 0
    return small.flatten(1).float()


@torch.no_grad()
def portrait_scores(q: torch.Tensor, k_portrait: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each token's attention to each mask of the portrait: [3, tokens].

    q [1, tokens, heads, d] and k_portrait [1, portrait tokens, heads, d] as the block's
    self-attention uses them (normalised, rotated); masks [3, portrait tokens].
    """
    scale = 1.0 / math.sqrt(q.shape[-1])
    masks = masks.to(q.device, torch.float32)
    sizes = masks.sum(dim=1)
    total = torch.zeros(masks.shape[0], q.shape[1], device=q.device)
    heads = q.shape[2]
    for head in range(heads):  # one head at a time: tokens x portrait tokens stays small
        attn = (q[0, :, head].float() * scale) @ k_portrait[0, :, head].float().T
        total += (attn.softmax(dim=-1) @ masks.T).T / sizes[:, None]
    return total / heads


def labels(scores: torch.Tensor) -> torch.Tensor:
    """Each token's label position from its mask scores [3, tokens] -> [tokens]."""
    ranges = []
    for speaker, (low, high) in enumerate(LABELS):
        row = scores[speaker]
        lo, hi = row.min(), row.max()
        ranges.append((row - lo) / (hi - lo + 1e-8) * (high - low) + low)
    ranges.append(torch.full_like(scores[0], BACKGROUND))
    choices = torch.stack(ranges, dim=1)  # [tokens, 3]
    best = scores.argmax(dim=0)
    return choices[torch.arange(scores.shape[1], device=scores.device), best]


def voice_labels(tokens_per_voice: int, device) -> torch.Tensor:
    """The audio keys' labels: each speaker's tokens at the centre of its range."""
    centres = [(low + high) / 2 for low, high in LABELS]
    return torch.tensor(centres, device=device).repeat_interleave(tokens_per_voice)


def rotate(x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """1D RoPE over the last dim (interleaved pairs, base 10000).

    `positions` broadcasts against x's shape without its last dim (for example [seq] for
    x [..., seq, d]).
    """
    dim = x.shape[-1]
    freqs = 1.0 / (10000 ** (torch.arange(0, dim, 2, device=x.device).float() / dim))
    angles = positions.float()[..., None] * freqs  # [..., seq, dim/2]
    cos, sin = angles.cos(), angles.sin()
    pairs = x.float().unflatten(-1, (-1, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    out = torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1)
    return out.flatten(-2).type_as(x)
