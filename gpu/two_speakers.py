"""Two speakers in one picture: where each person is, and how their two recordings meet in time.

The folder protocol (handlers/layout.py) gives a talking-head job one image and two recordings,
`<stem>.speaker1.<audio ext>` and `<stem>.speaker2.<audio ext>`. This module holds the facts
every engine that renders two speakers shares, after MeiGen-AI's InfiniteTalk/MultiTalk
reference (`audio_prepare_multi` in `generate_infinitetalk.py`, the human masks in
`wan/multitalk.py`):

- **Where**: speaker 1 is the left half of the picture and speaker 2 the right half, each
  inset by 5 % (the reference's `face_scale`), unless prompt.json gives a box per speaker in
  image pixels, `[x0, y0, x1, y1]` with x across. (The reference's `bbox` lists rows first;
  ours is the usual x-first order.)
- **When**: `turns` (the reference's `add`) plays speaker 1's recording, then speaker 2's; each
  is silent while the other talks. `together` (the reference's `para`, its example's choice
  and the default) starts both at 0, for a conversation recorded as one track per person; the
  shorter one is followed by silence (the reference needs equal lengths).

The video is as long as the two placed recordings, and its sound is their sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gpu.errors import InputError

if TYPE_CHECKING:
    from gpu.media import AudioInfo

MIX_RATE = 48_000
FACE_INSET = 0.05  # the reference's face_scale: the default halves are inset by 5 %

Box = tuple[int, int, int, int]


class Speaking(StrEnum):
    TURNS = "turns"  # speaker 1, then speaker 2 (the reference's audio_type "add")
    TOGETHER = "together"  # both from the start (the reference's audio_type "para")


DEFAULT_SPEAKING = Speaking.TOGETHER


def default_boxes(width: int, height: int) -> tuple[Box, Box]:
    """The reference's default places: the left and right halves, inset by 5 %."""
    top, bottom = int(height * FACE_INSET), int(height * (1 - FACE_INSET))
    half = width // 2
    left = (int(half * FACE_INSET), top, int(half * (1 - FACE_INSET)), bottom)
    right = (int(half * FACE_INSET + half), top, int(half * (1 - FACE_INSET) + half), bottom)
    return left, right


def speaker_boxes(
    asked: Sequence[Sequence[int]] | None, width: int, height: int, image_name: str = "the image"
) -> tuple[Box, Box]:
    """The two speakers' boxes in image pixels: prompt.json's, checked, or the default halves."""
    if not asked:
        return default_boxes(width, height)
    if len(asked) != 2:
        raise InputError(
            f'prompt.json "speakers" lists {len(asked)} boxes; a two-speaker job needs exactly '
            "2, speaker 1 first"
        )
    boxes = []
    for number, box in enumerate(asked, 1):
        x0, y0, x1, y1 = (int(v) for v in box)
        if not (0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height):
            raise InputError(
                f"speaker {number}'s box {list(box)} is not inside {image_name} "
                f"({width}x{height}): give [x0, y0, x1, y1] in pixels with x0 < x1 <= {width} "
                f"and y0 < y1 <= {height}"
            )
        boxes.append((x0, y0, x1, y1))
    return boxes[0], boxes[1]


def placed(
    first: np.ndarray, second: np.ndarray, speaking: Speaking
) -> tuple[np.ndarray, np.ndarray]:
    """Both recordings (mono samples at one rate) on the video's timeline, equal in length."""
    if speaking == Speaking.TURNS:
        return (
            np.concatenate([first, np.zeros_like(second)]),
            np.concatenate([np.zeros_like(first), second]),
        )
    length = max(len(first), len(second))
    return (
        np.pad(first, (0, length - len(first))),
        np.pad(second, (0, length - len(second))),
    )


def timeline_seconds(first: float, second: float, speaking: Speaking) -> float:
    """How long the video of two recordings of these lengths is."""
    return first + second if speaking == Speaking.TURNS else max(first, second)


def mixed(first: np.ndarray, second: np.ndarray, speaking: Speaking) -> np.ndarray:
    """The sound of the video: both placed recordings summed, kept within [-1, 1]."""
    one, two = placed(first, second, speaking)
    return np.clip(one + two, -1.0, 1.0).astype(np.float32)


def write_mix(voices: tuple[AudioInfo, AudioInfo], speaking: str | None, path: Path) -> Path:
    """The two-speaker video's sound as a 48 kHz WAV file at `path` (the lifecycle muxes it)."""
    from gpu.speech.join import write_wav

    first, second = (v.samples(MIX_RATE) for v in voices)
    write_wav(path, mixed(first, second, Speaking(speaking or DEFAULT_SPEAKING)), MIX_RATE)
    return path
