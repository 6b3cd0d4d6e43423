"""Segments rendered apart, joined into one video with the original audio muxed once.

Each segment of a parallel render (handlers/segments.py) is an intermediate video without
sound, exactly as many frames long as its share of the recording. Joining decodes them in order
and streams their frames into the one encoder (gpu/encode.py) with the whole original
recording, so the sound never passes through a cut. The optional cross-fade keeps the length:
for its first frames a segment is dissolved in from the last frame of the one before (the cut
lies in a pause, so that frame is a face waiting to speak).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from gpu.encode import EncodeResult, encode_mp4
from gpu.engine import FrameRate

INTERMEDIATE_CRF = 10  # near-lossless: the join encodes once more, at the usual quality


def decode_frames(path: Path) -> Iterator[np.ndarray]:
    """Every frame of a video file as HxWx3 uint8 RGB, in order. One reformatter for the whole
    file: `to_ndarray(format=...)` builds a conversion context per frame, ten times slower."""
    to_rgb = VideoReformatter()
    with av.open(str(path)) as container:
        for frame in container.decode(container.streams.video[0]):
            yield to_rgb.reformat(frame, format="rgb24").to_ndarray()


def joined_frames(paths: Sequence[Path], crossfade: int = 0) -> Iterator[np.ndarray]:
    """The segments' frames one after another, each (after the first) dissolved in over
    `crossfade` frames from the frame shown just before its cut."""
    before: np.ndarray | None = None
    for path in paths:
        for index, frame in enumerate(decode_frames(path)):
            if before is not None and index < crossfade:
                weight = (index + 1) / (crossfade + 1)
                frame = (before * (1 - weight) + frame * weight).round().astype(np.uint8)
            yield frame
            last = frame
        before = last.astype(np.float32)


def join_segments(
    paths: Sequence[Path],
    fps: FrameRate,
    dest: Path,
    audio: Path | None = None,
    crossfade: int = 0,
) -> EncodeResult:
    """One MP4 of the segments in order, with `audio` (the original recording) muxed once."""
    return encode_mp4(joined_frames(paths, crossfade), fps, dest, audio=audio)
