"""Chunks of speech made into one track without clicks or level jumps.

Each chunk is synthesised apart, so its loudness differs a little and its edges need not be at
zero. Every chunk is brought to one speech level (within a bounded gain, so near-silence is not
blown up), faded in and out over a few milliseconds so it starts and ends at zero, and followed
by the pause its text asks for. The joins are then silence between two zero crossings: no
sample jump and no gap longer than the pause.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

TARGET_RMS = 0.1  # about -20 dBFS: speech level with headroom
MAX_GAIN = 8.0
FADE_SECONDS = 0.01
PEAK = 0.98


def finish(samples: np.ndarray, rate: int, pause: float) -> np.ndarray:
    """A chunk levelled, faded at both ends and followed by `pause` seconds of silence."""
    out = np.asarray(samples, dtype=np.float32).reshape(-1).copy()
    out = np.nan_to_num(out)
    rms = float(np.sqrt(np.mean(out**2))) if out.size else 0.0
    if rms > 0:
        out *= min(TARGET_RMS / rms, MAX_GAIN)
    peak = float(np.abs(out).max()) if out.size else 0.0
    if peak > PEAK:
        out *= PEAK / peak
    fade = min(int(FADE_SECONDS * rate), out.size // 2)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
        out[:fade] *= ramp
        out[-fade:] *= ramp[::-1]
    return np.concatenate([out, np.zeros(round(pause * rate), dtype=np.float32)])


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Mono 16-bit PCM WAV: what every player and every talking-head engine reads."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).round().astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm.tobytes())
