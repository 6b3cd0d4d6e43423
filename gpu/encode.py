"""H.264 + AAC MP4 encoding with PyAV, in-process, frames streamed as they come.

No PNG files and no ffmpeg subprocess: each RGB frame goes straight into libx264. Audio is
decoded from the original file, resampled to 48 kHz AAC, and cut (or padded with silence) to
the video's length so the two streams start and end together.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from gpu.engine import FrameRate, plain_rate
from gpu.errors import EncodeError
from gpu.media import open_audio

AUDIO_RATE = 48_000


@dataclass(frozen=True)
class EncodeResult:
    """What was written: frame count, size, fps and duration in seconds."""

    frames: int
    width: int
    height: int
    fps: int | float
    duration_seconds: float
    has_audio: bool
    first_frame: np.ndarray | None


def encode_mp4(
    frames: Iterable[np.ndarray],
    fps: FrameRate,
    dest: Path,
    audio: Path | None = None,
    crf: int = 20,
    preset: str = "veryfast",
) -> EncodeResult:
    """Encode HxWx3 uint8 RGB frames (even sides) to an MP4 browsers and Slack can play.

    Audio, when given, is interleaved as the video advances and ends with the last frame.
    """
    video = None
    feeder: AudioFeeder | None = None
    count = 0
    first: np.ndarray | None = None
    width = height = 0
    with mp4_output(dest) as container:
        for frame in frames:
            if video is None:
                height, width = frame.shape[:2]
                if width % 2 or height % 2:
                    raise EncodeError(f"frame size {width}x{height} must be even for yuv420p")
                video = container.add_stream("libx264", rate=Fraction(fps))
                video.width, video.height, video.pix_fmt = width, height, "yuv420p"
                video.codec_context.options = {"crf": str(crf), "preset": preset}
                if audio is not None:
                    feeder = AudioFeeder(container, audio)
                first = frame.copy()
            elif frame.shape[:2] != (height, width):
                raise EncodeError(
                    f"frame {count} is {frame.shape[1]}x{frame.shape[0]}, not {width}x{height}"
                )
            rgb = np.ascontiguousarray(frame, dtype=np.uint8)
            container.mux(video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
            count += 1
            if feeder is not None:
                feeder.feed_until(count / fps)
        if video is None:
            raise EncodeError("the engine produced no frames")
        container.mux(video.encode(None))
        if feeder is not None:
            feeder.finish(count / fps)
    seconds = float(count / Fraction(fps))
    return EncodeResult(count, width, height, plain_rate(fps), seconds, feeder is not None, first)


@contextmanager
def mp4_output(dest: Path) -> Iterator[av.container.OutputContainer]:
    """An MP4 being written at `dest`: closed when done; closed and deleted if writing fails,
    so no partial file is left behind."""
    container = av.open(str(dest), mode="w", format="mp4", options={"movflags": "+faststart"})
    try:
        yield container
    except BaseException:
        container.close()
        dest.unlink(missing_ok=True)
        raise
    container.close()


class AudioFeeder:
    """Decodes the source audio lazily and writes AAC up to a given time, never past it."""

    def __init__(self, container: av.container.OutputContainer, audio: Path) -> None:
        self.container = container
        self.stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
        self.source = open_audio(audio)
        self.frames = self.source.decode(self.source.streams.audio[0])
        self.resampler = av.AudioResampler(
            format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=1024
        )
        self.pending: list[av.AudioFrame] = []
        self.written = 0
        self.exhausted = False

    def _next(self) -> av.AudioFrame | None:
        while not self.pending:
            if self.exhausted:
                return None
            frame = next(self.frames, None)
            if frame is None:
                self.exhausted = True
                self.pending.extend(self.resampler.resample(None))
            else:
                frame.pts = None
                self.pending.extend(self.resampler.resample(frame))
        return self.pending.pop(0)

    def feed_until(self, seconds: float) -> None:
        budget = round(seconds * AUDIO_RATE)
        while self.written < budget:
            frame = self._next()
            if frame is None:  # the recording ended first: silence up to the video's length
                frame = _audio_frame(np.zeros((2, min(1024, budget - self.written)), np.float32))
            left = budget - self.written
            if frame.samples > left:
                data = frame.to_ndarray()
                head = _audio_frame(data[:, :left])
                self.pending.insert(0, _audio_frame(data[:, left:]))
                frame = head
            frame.pts = self.written
            frame.time_base = Fraction(1, AUDIO_RATE)
            self.container.mux(self.stream.encode(frame))
            self.written += frame.samples

    def finish(self, seconds: float) -> None:
        self.feed_until(seconds)
        self.container.mux(self.stream.encode(None))
        self.source.close()


def _audio_frame(data: np.ndarray) -> av.AudioFrame:
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format="fltp", layout="stereo")
    frame.sample_rate = AUDIO_RATE
    return frame


def poster_jpeg(frame: np.ndarray, longest: int = 640) -> bytes:
    """A JPEG of one frame, for notifications."""
    img = Image.fromarray(frame)
    img.thumbnail((longest, longest))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()
