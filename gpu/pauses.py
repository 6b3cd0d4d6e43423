"""Where a recording can be cut without cutting a word: pauses, and segments cut inside them.

A long talking head renders fastest as several segments on several GPUs at once
(handlers/segments.py). A cut between two segments is where motion restarts, so it must fall
where nobody is speaking: a pause. Pauses are found on the loudness-normalised signal (ITU-R
BS.1770 integrated loudness brought to -23 LUFS, as the talking-head model hears it), so the
same silence threshold works for a whisper and for a shout. Everything is counted in video
frames: a cut lands on a frame boundary, so the segments' frames add up to the whole video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TARGET_LUFS = -23.0  # the level the talking-head model hears (gpu/infinitetalk/audio.py)
SILENCE_DBFS = -45.0  # a frame quieter than this, after normalising, is silent
SHORTEST_PAUSE_SECONDS = 0.2  # a gap between words shorter than this is not a pause


@dataclass(frozen=True)
class Span:
    """Frames [start, end) of the video, in order: a pause, or a segment to render."""

    start: int
    end: int

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def middle(self) -> int:
        return (self.start + self.end) // 2

    def seconds(self, fps: int) -> tuple[float, float]:
        return self.start / fps, self.end / fps


def frame_levels(samples: np.ndarray, rate: int, fps: int) -> np.ndarray:
    """The RMS level of each video frame's audio in dBFS, after loudness normalisation."""
    hop = rate / fps
    count = int(np.ceil(len(samples) / hop - 1e-9))
    edges = np.round(np.arange(count + 1) * hop).astype(np.int64).clip(0, len(samples))
    power = np.add.reduceat(samples.astype(np.float64) ** 2, edges[:-1]) if count else np.zeros(0)
    widths = np.maximum(np.diff(edges), 1)
    level = 10 * np.log10(power / widths + 1e-20)
    return level + _normalising_gain(samples, rate)


def _normalising_gain(samples: np.ndarray, rate: int) -> float:
    """The gain in dB that brings the recording to TARGET_LUFS (0 for silence or a clip shorter
    than one 400 ms gating block, which BS.1770 cannot measure)."""
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    if len(samples) < int(meter.block_size * rate):
        return 0.0
    loudness = meter.integrated_loudness(samples.astype(np.float64))
    return 0.0 if not np.isfinite(loudness) or abs(loudness) > 100 else TARGET_LUFS - loudness


def find_pauses(levels: np.ndarray, fps: int) -> list[Span]:
    """Runs of silent frames at least SHORTEST_PAUSE_SECONDS long (frames, in order)."""
    silent = np.concatenate([[False], levels < SILENCE_DBFS, [False]])
    changes = np.flatnonzero(silent[1:] != silent[:-1])
    shortest = max(1, round(SHORTEST_PAUSE_SECONDS * fps))
    return [
        Span(int(start), int(end))
        for start, end in zip(changes[::2], changes[1::2], strict=True)
        if end - start >= shortest
    ]


def cut_at_pauses(
    levels: np.ndarray, pauses: list[Span], longest: int, pieces: int = 1
) -> list[Span]:
    """Segments covering every frame, cut in the middle of pauses: at least `pieces` of them
    when the pauses allow (one per GPU), none longer than `longest` frames, and the longest as
    short as the pauses allow (the slowest segment sets the wall time)."""
    total = len(levels)
    pieces = max(pieces, -(-total // longest))
    best = _greedy(levels, pauses, longest)
    low, high = -(-total // pieces), longest
    while low < high:  # the shortest bound whose greedy cutting needs no more pieces
        middle = (low + high) // 2
        spans = _greedy(levels, pauses, middle)
        if len(spans) <= pieces:
            best, high = spans, middle
        else:
            low = middle + 1
    return best


def _greedy(levels: np.ndarray, pauses: list[Span], longest: int) -> list[Span]:
    """Each segment as long as `longest` allows: cut at the latest pause that keeps it within
    bounds and none shorter than a quarter of it, else at the quietest frame there."""
    total = len(levels)
    shortest = max(1, longest // 4)
    spans: list[Span] = []
    start = 0
    while total - start > longest:
        low, high = start + shortest, min(start + longest, total - shortest)
        inside = [p.middle for p in pauses if low <= p.middle <= high]
        cut = inside[-1] if inside else low + int(np.argmin(levels[low : high + 1]))
        spans.append(Span(start, cut))
        start = cut
    spans.append(Span(start, total))
    return spans


def plan_cuts(
    samples: np.ndarray, rate: int, fps: int, longest_seconds: float, pieces: int = 1
) -> tuple[list[Span], list[Span]]:
    """(segments, pauses) for a mono recording: see `cut_at_pauses`."""
    levels = frame_levels(samples, rate, fps)
    pauses = find_pauses(levels, fps)
    longest = max(1, int(longest_seconds * fps))
    return cut_at_pauses(levels, pauses, longest, pieces), pauses
