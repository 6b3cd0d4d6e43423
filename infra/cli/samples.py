"""Generated sample inputs (a face-like portrait, a voice-like recording, a short video) for the
demo and tests.

Made from code, so the demo needs no download and no data set.
"""

from __future__ import annotations

import io
import json

import av
import numpy as np
import soundfile as sf
from PIL import Image, ImageDraw


def portrait_png(width: int = 480, height: int = 640, seed: int = 0) -> bytes:
    """A simple illustrated face on a soft background, PNG bytes."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None, None]
    x = np.linspace(0, 1, width)[None, :, None]
    base = np.array([70, 110, 160]) * (1 - y) + np.array([200, 170, 140]) * y
    base = base + 25 * np.sin(6 * x + seed) + rng.normal(0, 3, (height, width, 3))
    img = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    cx, cy, r = width // 2, int(height * 0.45), int(min(width, height) * 0.28)
    d.ellipse((cx - r, cy - int(r * 1.25), cx + r, cy + int(r * 1.25)), fill=(236, 196, 164))
    d.ellipse((cx - r, cy - int(r * 1.4), cx + r, cy - int(r * 0.5)), fill=(70, 45, 30))
    for dx in (-r // 2.5, r // 2.5):
        d.ellipse((cx + dx - 14, cy - 20, cx + dx + 14, cy + 4), fill=(255, 255, 255))
        d.ellipse((cx + dx - 6, cy - 14, cx + dx + 6, cy - 2), fill=(40, 30, 20))
    d.arc(
        (cx - r // 2, cy + r // 3, cx + r // 2, cy + int(r * 0.8)),
        20,
        160,
        fill=(150, 60, 60),
        width=6,
    )
    d.rectangle((cx - r // 2, cy + int(r * 1.2), cx + r // 2, height), fill=(60, 80, 120))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def voice_samples(seconds: float = 3.0, rate: int = 16_000, seed: int = 0) -> np.ndarray:
    """A voice-like signal: a gliding harmonic tone with syllable-rate amplitude bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    syllables = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, 3)), 0, None) ** 2
    signal = 0.25 * tone * syllables + 0.003 * rng.normal(size=t.size)
    return signal.astype(np.float32)


def voice_wav(seconds: float = 3.0, rate: int = 16_000, seed: int = 0, channels: int = 1) -> bytes:
    samples = voice_samples(seconds, rate, seed)
    if channels > 1:
        samples = np.stack([samples] * channels, axis=1)
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def talk_with_pauses(
    seconds: float = 60.0, rate: int = 16_000, seed: int = 0
) -> tuple[bytes, list[tuple[float, float]]]:
    """A long voice-like recording, phrases 2-7 s long with pauses of 0.5-0.9 s (room noise in
    them), as a WAV; and where its pauses are, in seconds."""
    rng = np.random.default_rng(seed)
    parts, pauses, at = [], [], 0.0
    while at < seconds:
        phrase = min(rng.uniform(2.0, 7.0), seconds - at)
        parts.append(voice_samples(phrase, rate, int(rng.integers(1 << 30))))
        at += phrase
        if at >= seconds:
            break
        gap = min(rng.uniform(0.5, 0.9), seconds - at)
        parts.append((0.003 * rng.normal(size=int(gap * rate))).astype(np.float32))
        pauses.append((at, at + gap))
        at += gap
    buf = io.BytesIO()
    sf.write(buf, np.concatenate(parts), rate, format="WAV", subtype="PCM_16")
    return buf.getvalue(), pauses


def flat_png(width: int = 128, height: int = 128, colour=(120, 140, 160)) -> bytes:
    """One flat colour: a portrait whose every pixel shows what an engine drew on it."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, format="PNG")
    return buf.getvalue()


def prompt_json(
    prompt: str = "A paper boat drifting down a rain-soaked street at dusk", **extra
) -> bytes:
    return json.dumps({"prompt": prompt, **extra}, indent=2).encode()


SCRIPT = (
    "Hello! I am Bob, and I never recorded a word of this.\n\n"
    "dropreel read my script, spoke it, then made this video."
)
"""What the demo's script job says."""


VIDEO_CODECS = {  # extension -> (container, codec)
    "mp4": ("mp4", "libx264"),
    "mov": ("mov", "libx264"),
    "mkv": ("matroska", "libx264"),
    "webm": ("webm", "libvpx-vp9"),
}


def talking_video(
    seconds: float = 2.0,
    fps: int = 25,
    width: int = 320,
    height: int = 240,
    ext: str = "mp4",
    seed: int = 0,
) -> bytes:
    """A small source video for dubbing: a face-like oval that moves and changes colour, each
    frame numbered in its top 16 rows (grey level 10 x the index, up to 25, for tests)."""
    fmt, codec = VIDEO_CODECS[ext]
    rng = np.random.default_rng(seed)
    tint = rng.integers(60, 200, 3)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(round(seconds * fps)):
            t = i / fps
            cx, cy = width * (0.5 + 0.1 * np.sin(t * 2)), height * 0.5
            face = ((xx - cx) / (width * 0.2)) ** 2 + ((yy - cy) / (height * 0.3)) ** 2 < 1
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = tint // 3
            frame[face] = (tint + i * 3) % 256
            frame[:16] = min(250, i * 10)  # the frame number, readable after lossy coding
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buf.getvalue()
