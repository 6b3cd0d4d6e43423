"""Segments rendered apart, joined into one video with the original audio muxed once.

Each segment of a parallel render (handlers/segments.py) is a video without sound, exactly as
many frames long as its share of the recording. Joining copies their H.264 packets in order into
one MP4 and muxes the whole original recording beside them, so the sound never passes through a
cut and the pictures are encoded once. The optional cross-fade decodes and encodes again, and
keeps the length: for its first frames a segment is dissolved in from the last frame of the one
before (the cut lies in a pause, so that frame is a face waiting to speak).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from gpu.encode import AudioFeeder, EncodeResult, encode_mp4, mp4_output
from gpu.engine import FrameRate, plain_rate

INTERMEDIATE_CRF = 10  # near-lossless, for a join that encodes once more (a cross-fade)


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
    """One MP4 of the segments in order, with `audio` (the original recording) muxed once.
    Without a cross-fade the segments' H.264 packets are copied as they are (they were encoded
    with the same settings, at the final quality): no second encode, no generation loss."""
    if crossfade:
        return encode_mp4(joined_frames(paths, crossfade), fps, dest, audio=audio)
    return _copy_join(paths, fps, dest, audio)


def _copy_join(paths: Sequence[Path], fps: FrameRate, dest: Path, audio: Path | None):
    with mp4_output(dest) as container:
        with av.open(str(paths[0])) as first:
            template = first.streams.video[0]
            video = container.add_stream_from_template(template)
            width, height = template.codec_context.width, template.codec_context.height
        feeder = AudioFeeder(container, audio) if audio is not None else None
        count = 0
        for path in paths:
            with av.open(str(path)) as source:
                stream = source.streams.video[0]
                offset = round(count / Fraction(fps) / stream.time_base)
                for packet in source.demux(stream):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.pts += offset
                    packet.dts += offset
                    packet.stream = video
                    container.mux(packet)
                count += stream.frames
            if feeder is not None:
                feeder.feed_until(count / fps)
        if feeder is not None:
            feeder.finish(count / fps)
    poster = next(decode_frames(paths[0]))
    seconds = float(count / Fraction(fps))
    has_audio = audio is not None
    return EncodeResult(count, width, height, plain_rate(fps), seconds, has_audio, poster)
