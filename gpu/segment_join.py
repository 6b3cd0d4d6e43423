"""Segments rendered apart, joined into one video with the original audio muxed once.

Each segment of a parallel render (handlers/segments.py) is a video without sound, exactly as
many frames long as its share of the recording. Joining copies their H.264 packets in order into
one MP4 and muxes the whole original recording beside them, so the sound never passes through a
cut and the pictures are encoded once. The optional cross-fade decodes and encodes again, and
keeps the length: for its first frames a segment is dissolved in from the last frame of the one
before (the cut lies in a pause, so that frame is a face waiting to speak).
"""

from __future__ import annotations

import contextlib
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


def encode_audio(source: Path, seconds: float, dest: Path) -> Path:
    """The recording as the video's AAC track, `seconds` long (cut, or padded with silence), in
    a file of its own: made while the segments render, so the join only copies it."""
    with mp4_output(dest) as container:
        AudioFeeder(container, source).finish(seconds)
    return dest


def join_segments(
    paths: Sequence[Path],
    fps: FrameRate,
    dest: Path,
    audio: Path | None = None,
    crossfade: int = 0,
    track: Path | None = None,
) -> EncodeResult:
    """One MP4 of the segments in order, with `audio` (the original recording) muxed once;
    `track`: that recording already encoded by `encode_audio`. Without a cross-fade the
    segments' H.264 packets are copied as they are (encoded with the same settings, at the final
    quality): no second encode, no generation loss."""
    if crossfade:
        return encode_mp4(joined_frames(paths, crossfade), fps, dest, audio=audio)
    if track is None and audio is not None:
        frames = sum(_frames_in(path) for path in paths)
        track = encode_audio(audio, float(frames / Fraction(fps)), dest.with_suffix(".m4a"))
    return _copy_join(paths, fps, dest, track)


def _frames_in(path: Path) -> int:
    with av.open(str(path)) as source:
        return source.streams.video[0].frames


def _copy_join(paths: Sequence[Path], fps: FrameRate, dest: Path, track: Path | None):
    """Copy the segments' video packets, each segment shifted to where the one before ended,
    and the track's audio packets interleaved up to the same time."""
    with contextlib.ExitStack() as stack:
        container = stack.enter_context(mp4_output(dest))
        with av.open(str(paths[0])) as first:
            template = first.streams.video[0]
            video = container.add_stream_from_template(template)
            width, height = template.codec_context.width, template.codec_context.height
        sound = _Track(stack.enter_context(av.open(str(track))), container) if track else None
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
            if sound is not None:
                sound.copy_until(float(count / Fraction(fps)))
        if sound is not None:
            sound.copy_until(float("inf"))
    poster = next(decode_frames(paths[0]))
    seconds = float(count / Fraction(fps))
    has_audio = track is not None
    return EncodeResult(count, width, height, plain_rate(fps), seconds, has_audio, poster)


class _Track:
    """An encoded audio track's packets, copied into the joined video as its pictures advance."""

    def __init__(self, source: av.container.InputContainer, container) -> None:
        stream = source.streams.audio[0]
        self.out = container.add_stream_from_template(stream)
        self.packets = (p for p in source.demux(stream) if p.dts is not None)
        self.pending = next(self.packets, None)
        self.container = container

    def copy_until(self, seconds: float) -> None:
        while self.pending is not None and self.pending.pts * self.pending.time_base < seconds:
            self.pending.stream = self.out
            self.container.mux(self.pending)
            self.pending = next(self.packets, None)
