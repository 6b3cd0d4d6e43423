"""Decoding inputs: images with Pillow under a pixel limit, audio with PyAV.

Everything here raises `InputError` with the file name and what to do, never a raw decoder error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageOps

from gpu.errors import InputError


def load_image(path: Path, max_pixels: int) -> Image.Image:
    """Decode an image to RGB with EXIF orientation applied, refusing decompression bombs."""
    name = path.name
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty (0 bytes): upload the image again")
    Image.MAX_IMAGE_PIXELS = None  # we enforce our own, clearer limit below
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise InputError(
                        f"{name} is {width}x{height} = {width * height:,} pixels, over the limit "
                        f"of {max_pixels:,}: downscale it and upload it again"
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
                return img.convert("RGB")
    except InputError:
        raise
    except Exception as err:  # Pillow raises many types for corrupt data
        raise InputError(
            f"{name} is not a readable image ({type(err).__name__}): upload a PNG, JPEG or WebP"
        ) from err


def fit_cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Resize and centre-crop to exactly width x height, without distortion."""
    return ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def even_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Scale (width, height) so the longest side is at most `longest`, both sides even."""
    scale = min(1.0, longest / max(width, height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


def audio_seconds(path: Path) -> float:
    """Duration of an audio file from its decoded samples' timing (not trusting headers)."""
    name = path.name
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty (0 bytes): upload the audio again")
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise InputError(
                    f"{name} has no audio stream: upload a WAV, MP3, M4A, FLAC, OGG or Opus"
                )
            stream = container.streams.audio[0]
            samples = 0
            rate = stream.rate or stream.codec_context.sample_rate
            for frame in container.decode(stream):
                samples += frame.samples
                rate = frame.sample_rate
    except InputError:
        raise
    except Exception as err:
        raise InputError(
            f"{name} is not readable audio ({type(err).__name__}): upload a WAV, MP3, M4A, FLAC, "
            "OGG or Opus file"
        ) from err
    if samples == 0 or not rate:
        raise InputError(f"{name} holds no audio samples: upload a recording that is not empty")
    return samples / rate


def load_audio(path: Path, sample_rate: int) -> np.ndarray:
    """Decode any supported audio to mono float32 at `sample_rate`."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except Exception as err:
        raise InputError(f"{path.name} is not readable audio ({type(err).__name__})") from err
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
