"""Decoding inputs safely: images with Pillow under a pixel limit, audio and video with PyAV.

This is the one decoder of job inputs: the lifecycle decodes each file once here (under the
configured limits) and hands engines the result, a decoded RGB image and an `AudioInfo` whose
`samples()` is the one audio loader every engine uses.

Inputs come from anyone who can write to the bucket, so nothing here trusts a file's name or
header: the container is recognised from its first bytes and opened with that one demuxer only
(ffmpeg's probing would otherwise follow a playlist disguised as an .mp3), sizes are checked
before pixels are decoded, and audio decoding stops at the duration limit whatever the header
says. What an image costs follows its pixel count, not its file size (a 155 KB PNG can hold 40 M
pixels), so decoding makes one full-size copy at most besides the decoded pixels: the RGB result. Everything raises `InputError` naming the file and saying what to do, never a raw decoder
error.
"""

from __future__ import annotations

import math
import struct
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soxr
from PIL import Image, ImageOps, PngImagePlugin

from gpu.errors import InputError

# Pillow's own bomb guard raises before we can say the size in words; every open below checks
# `max_pixels` itself, straight after reading the header and before decoding any pixel.
Image.MAX_IMAGE_PIXELS = None

IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "WEBP")
"""Accepted image codecs (MPO is the JPEG variant many phones write)."""
_RECOGNISED_IMAGES = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "ICO", "PPM")  # JPEG opens MPO
MIN_IMAGE_SIDE = 64
_PNG_METADATA_LIMITS = ("Decompressed data too large", "Too much memory used in text chunks")
"""How Pillow's PNG reader words its refusal of oversized metadata chunks."""
MAX_ASPECT_RATIO = 8.0
STRIP_PIXELS = 1 << 20
"""Colour conversion works on strips of about this many pixels (see `to_rgb`)."""
SILENCE_DBFS = -60.0
"""Audio whose loudest sample is quieter than this is refused as silent."""
MIN_AUDIO_RATE = 4_000
AUDIO_HINT = "upload a WAV, MP3, M4A, FLAC, OGG or Opus file"


# ----------------------------------------------------------------------------------- images


def load_image(path: Path, max_pixels: int, min_side: int = MIN_IMAGE_SIDE) -> Image.Image:
    """Decode an image to RGB with EXIF orientation applied, refusing bombs and odd shapes.

    Peak memory is the decoded pixels plus one RGB copy: the orientation is applied in place
    and colours are converted a strip at a time (`to_rgb`)."""
    name = path.name
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty (0 bytes): upload the image again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path, formats=_RECOGNISED_IMAGES)
    except Exception as err:  # UnidentifiedImageError, OSError, SyntaxError, ValueError...
        _refuse_metadata_bomb(name, err)
        raise InputError(
            f"{name} is not an image dropreel can read (not PNG, JPEG or WebP data): "
            "upload a PNG, JPEG or WebP file"
        ) from err
    with img:
        if img.format not in IMAGE_FORMATS:
            raise InputError(
                f"{name} is a {img.format} image; dropreel reads PNG, JPEG and WebP: "
                "convert it and upload it again"
            )
        width, height = img.size
        _check_size(
            name,
            (width, height),
            (min_side, max_pixels),
            "downscale it and upload it again",
            "image",
        )
        if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
            raise InputError(
                f"{name} is {width}x{height}, a {max(width, height) / min(width, height):.0f}:1 "
                f"strip; at most {MAX_ASPECT_RATIO:.0f}:1 is accepted: crop it"
            )
        try:
            img.load()
            ImageOps.exif_transpose(img, in_place=True)
            return to_rgb(img)
        except Exception as err:
            _refuse_metadata_bomb(name, err)
            raise InputError(
                f"{name} is truncated or damaged ({type(err).__name__} while decoding "
                f"{img.format} data): export it again and upload the new file"
            ) from err


def _check_size(
    name: str, size: tuple[int, int], limits: tuple[int, int], smaller: str, what: str
) -> None:
    """Refuse a picture (an image, a video's frames) over the pixel limit or under the side."""
    (width, height), (min_side, max_pixels) = size, limits
    if width * height > max_pixels:
        raise InputError(
            f"{name} is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}: {smaller}"
        )
    if min(width, height) < min_side:
        raise InputError(
            f"{name} is only {width}x{height} pixels; each side must be at least {min_side}: "
            f"upload a larger {what}"
        )


def _refuse_metadata_bomb(name: str, err: Exception) -> None:
    """Pillow refuses a PNG text or colour-profile chunk that unpacks past its limits (a
    decompression bomb in the metadata) with a bare ValueError; say so in words."""
    text = str(err)
    if isinstance(err, ValueError) and text.startswith(_PNG_METADATA_LIMITS):
        raise InputError(
            f"{name} carries metadata (a text or colour-profile chunk) that unpacks to more than "
            f"{PngImagePlugin.MAX_TEXT_CHUNK // 2**20} MB: save the image again without its "
            "metadata (for example, export it for the web) and upload it again"
        ) from err


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is laid over white, 16-bit is scaled down.

    A big image is converted a strip of rows at a time, so it costs one RGB copy beside its
    decoded pixels, not one copy per conversion step."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "F") or img.width * img.height <= STRIP_PIXELS:
        return _to_rgb(img)  # I and F scale by the whole image's range: one piece
    out = Image.new("RGB", img.size)
    rows = max(1, STRIP_PIXELS // img.width)
    for top in range(0, img.height, rows):
        strip = img.crop((0, top, img.width, min(img.height, top + rows)))
        out.paste(_to_rgb(strip), (0, top))
    return out


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode.startswith("I;16"):
        img = _sixteen_to_eight(img)
    elif img.mode == "I":
        peak = max(1.0, float(img.getextrema()[1]))
        data = np.asarray(img, dtype=np.float64) * (255.0 / peak)
        img = Image.fromarray(np.clip(data, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        data = np.nan_to_num(np.asarray(img, dtype=np.float64))
        low, high = float(data.min()), float(data.max())
        scaled = (data - low) * (255.0 / (high - low)) if high > low else np.zeros_like(data)
        img = Image.fromarray(scaled.astype(np.uint8), "L")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        img.mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def _sixteen_to_eight(img: Image.Image) -> Image.Image:
    """A 16-bit grayscale image as 8-bit ("L"), scaled (65535 -> 255) without a wider copy."""
    data = np.asarray(img)
    out = np.empty(data.shape, np.uint8)
    np.floor_divide(data, 257, out=out, casting="unsafe")
    return Image.fromarray(out, "L")


def fit_cover(img: Image.Image, width: int, height: int) -> Image.Image:
    """Resize and centre-crop to exactly width x height, without distortion."""
    return ImageOps.fit(img, (width, height), Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def even_size(width: int, height: int, longest: int) -> tuple[int, int]:
    """Scale (width, height) so the longest side is at most `longest`, both sides even."""
    scale = min(1.0, longest / max(width, height))
    w = max(2, int(width * scale) // 2 * 2)
    h = max(2, int(height * scale) // 2 * 2)
    return w, h


# ------------------------------------------------------------------------------------ audio


@dataclass(frozen=True)
class _Probed:
    """A probed input file: where it is, and what the user called it."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name


@dataclass(frozen=True)
class AudioInfo(_Probed):
    """What probing an audio file found: its real length (decoded), rate, channels, level.

    Engines get this instead of a path: `samples(rate)` decodes the same file through the one
    loader (`load_audio`), so every engine hears the same, correctly scaled signal.
    """

    seconds: float
    sample_rate: int
    channels: int
    codec: str
    container: str
    peak_dbfs: float

    def samples(self, sample_rate: int) -> np.ndarray:
        """The whole recording as mono float32 in [-1, 1] at `sample_rate`."""
        return load_audio(self.path, sample_rate, max_seconds=self.seconds)


def sniff_audio(path: Path) -> str:
    """The ffmpeg demuxer for this file, from its first bytes; InputError if not audio we read."""
    with path.open("rb") as f:
        head = f.read(64)
    name = path.name
    if not head:
        raise InputError(f"{name} is empty (0 bytes): upload the audio again")
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"RF64" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[4:8] == b"ftyp":
        return "mov"
    sync = len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0
    if head[:3] == b"ID3" or (sync and head[1] & 0x06):  # MPEG audio layer I/II/III
        return "mp3"
    if sync and (head[1] & 0xF6) == 0xF0:
        return "aac"  # raw ADTS, sometimes saved as .m4a
    kind = _describe_bytes(head)
    raise InputError(f"{name} is not an audio file ({kind}): {AUDIO_HINT}")


def _describe_bytes(head: bytes) -> str:
    if head[:8] == b"\x89PNG\r\n\x1a\n":
        return "it holds PNG image data"
    if head[:3] == b"\xff\xd8\xff":
        return "it holds JPEG image data"
    if head.lstrip()[:1] in (b"{", b"[", b"<", b"#") or head.isascii():
        return "it holds text"
    return "unrecognised data"


def _open_as(path: Path, fmt: str, hint: str) -> av.container.InputContainer:
    """Open with this one demuxer (the one the file's bytes named), or say the file is damaged."""
    try:
        return av.open(str(path), format=fmt)
    except Exception as err:
        raise InputError(
            f"{path.name} is truncated or damaged ({fmt} data that cannot be opened): "
            f"export it again, then {hint}"
        ) from err


def open_audio(path: Path) -> av.container.InputContainer:
    """Open with the demuxer matching the file's bytes only (see the module docstring)."""
    fmt = sniff_audio(path)
    container = _open_as(path, fmt, AUDIO_HINT)
    if not container.streams.audio:
        container.close()
        raise InputError(f"{path.name} has no audio stream: {AUDIO_HINT}")
    if container.streams.audio[0].codec_context is None:  # ffmpeg has no decoder for it
        container.close()
        raise InputError(
            f"{path.name} holds {fmt} audio in a codec dropreel cannot decode: export it as "
            f"16-bit PCM WAV, or {AUDIO_HINT}"
        )
    return container


def probe_audio(path: Path, max_seconds: float, min_seconds: float = 0.5) -> AudioInfo:
    """Decode the whole file once (stopping at the limit) and check it is usable speech/audio.

    Refuses: empty, unreadable, truncated, longer than `max_seconds`, shorter than
    `min_seconds`, NaN/infinite samples, and silence (peak under -60 dBFS).
    """
    name = path.name
    if path.stat().st_size == 0:
        raise InputError(f"{name} is empty (0 bytes): upload the audio again")
    container = open_audio(path)
    with container:
        stream = container.streams.audio[0]
        fmt = container.format.name
        header_seconds = container.duration / av.time_base if container.duration else None
        if header_seconds and header_seconds > max_seconds * 1.01:
            raise InputError(_too_long(name, header_seconds, max_seconds))
        rate = stream.codec_context.sample_rate or stream.rate or 0
        channels = stream.codec_context.channels or 0
        samples, peak, bad = 0, 0.0, False
        try:
            for frame in container.decode(stream):
                rate = frame.sample_rate or rate
                samples += frame.samples
                data = _full_scale(frame.to_ndarray())
                if not np.isfinite(data).all():
                    bad = True
                    data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
                peak = max(peak, float(np.abs(data).max(initial=0.0)))
                if rate and samples / rate > max_seconds * 1.01:
                    raise InputError(_too_long(name, samples / rate, max_seconds, at_least=True))
        except InputError:
            raise
        except Exception as err:
            done = samples / rate if rate else 0.0
            if done > 0:
                raise InputError(
                    f"{name} is truncated or damaged: decoding stopped after {done:.1f} s "
                    f"({type(err).__name__}): export it again and upload the new file"
                ) from err
            raise InputError(
                f"{name} is not readable audio ({fmt} data that cannot be decoded): {AUDIO_HINT}"
            ) from err
    if samples == 0 or not rate:
        raise InputError(f"{name} holds no audio samples: upload a recording that is not empty")
    seconds = samples / rate
    _check_truncation(path, fmt, header_seconds, seconds)
    if bad:
        raise InputError(
            f"{name} contains invalid samples (NaN or infinity): export it again as 16-bit PCM"
        )
    if rate < MIN_AUDIO_RATE:
        raise InputError(
            f"{name} has a sample rate of {rate} Hz; at least {MIN_AUDIO_RATE} Hz is needed: "
            "export it at 16 kHz or more"
        )
    if seconds < min_seconds:
        raise InputError(
            f"{name} is only {seconds:.2f} s long; at least {min_seconds:g} s is needed: "
            "upload a longer recording"
        )
    peak_dbfs = 20 * math.log10(peak) if peak > 0 else -math.inf
    if peak_dbfs < SILENCE_DBFS:
        level = "digital silence" if peak == 0 else f"loudest sample {peak_dbfs:.0f} dBFS"
        raise InputError(
            f"{name} is silent ({level}): upload a recording with audible speech or sound"
        )
    return AudioInfo(
        path=path,
        seconds=seconds,
        sample_rate=rate,
        channels=channels,
        codec=stream.codec_context.name,
        container=fmt,
        peak_dbfs=round(peak_dbfs, 1),
    )


def _too_long(name: str, seconds: float, limit: float, at_least: bool = False) -> str:
    more = "more than " if at_least else ""
    return (
        f"{name} is {more}{_minutes(seconds)} long; the limit is {_minutes(limit)}: "
        "cut it into shorter parts"
    )


def _minutes(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    if seconds >= 120:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds:.1f} seconds"


def _check_truncation(path: Path, fmt: str, header_seconds: float | None, seconds: float) -> None:
    """Refuse files whose own header promises more audio than the file holds."""
    name = path.name
    promised = None
    if fmt == "wav":
        promised = _wav_promised_seconds(path)
    elif fmt == "mp3" and header_seconds and _has_vbr_header(path):
        promised = header_seconds  # ffmpeg took it from the Xing/Info/VBRI frame count
    if promised and seconds < promised * 0.95 and promised - seconds > 0.25:
        raise InputError(
            f"{name} is truncated: its header promises {promised:.1f} s of audio but the file "
            f"holds {seconds:.1f} s (an interrupted upload?): upload it again"
        )


def _wav_promised_seconds(path: Path) -> float | None:
    """Duration the RIFF header declares (data chunk size / byte rate), if it declares one."""
    try:
        with path.open("rb") as f:
            riff = f.read(12)
            if riff[:4] != b"RIFF":
                return None
            byte_rate = None
            for _ in range(64):
                chunk = f.read(8)
                if len(chunk) < 8:
                    return None
                cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
                if cid == b"fmt ":
                    fmt = f.read(size + (size & 1))
                    byte_rate = struct.unpack("<I", fmt[8:12])[0] if len(fmt) >= 12 else None
                elif cid == b"data":
                    if size in (0, 0xFFFFFFFF) or not byte_rate:
                        return None  # streamed WAV: length unknown by design
                    return size / byte_rate
                else:
                    f.seek(size + (size & 1), 1)
    except (OSError, struct.error):
        return None
    return None


def _has_vbr_header(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(10)
        skip = 0
        if head[:3] == b"ID3" and len(head) == 10:
            skip = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
        f.seek(skip)
        first = f.read(256)
    return any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def load_audio(path: Path, sample_rate: int, max_seconds: float | None = None) -> np.ndarray:
    """Decode any supported audio to mono float32 at `sample_rate` (soxr, high quality).

    The container is recognised from its bytes (`open_audio`), samples are scaled to [-1, 1]
    whatever their format (`_full_scale`), channels are averaged (not summed, so stereo speech
    never clips); 16 kHz is what speech encoders such as wav2vec2 expect.
    """
    container = open_audio(path)
    chunks: list[np.ndarray] = []
    with container:
        stream = container.streams.audio[0]
        source_rate = stream.codec_context.sample_rate or stream.rate
        limit = math.inf if max_seconds is None else max_seconds * source_rate * 1.01
        total = 0
        try:
            for frame in container.decode(stream):
                data = _full_scale(frame.to_ndarray())
                if frame.format.is_planar:
                    mono = data.mean(axis=0)
                else:
                    mono = data.reshape(-1, len(frame.layout.channels)).mean(axis=1)
                chunks.append(mono)
                source_rate = frame.sample_rate or source_rate
                total += mono.size
                if total > limit:
                    raise InputError(_too_long(path.name, total / source_rate, max_seconds or 0))
        except InputError:
            raise
        except Exception as err:
            raise InputError(f"{path.name} is not readable audio ({type(err).__name__})") from err
    if not chunks:
        return np.zeros(0, np.float32)
    signal = np.nan_to_num(np.concatenate(chunks)).astype(np.float32)
    if source_rate != sample_rate:
        signal = soxr.resample(signal, source_rate, sample_rate, quality="HQ").astype(np.float32)
    return signal


def _full_scale(data: np.ndarray) -> np.ndarray:
    """Decoded samples as float32 where full scale is [-1, 1], whatever the sample format.

    Integer PCM is divided by 2**(bits - 1), the convention of ffmpeg and libsndfile (24-bit WAV
    decodes to 32-bit integers, so it is scaled by 2**31 like 32-bit); 8-bit PCM is unsigned and
    centred on 128 first. Float samples are already full scale.
    """
    if data.dtype.kind == "f":
        return data.astype(np.float32, copy=False)
    if data.dtype == np.uint8:
        return (data.astype(np.float32) - 128.0) / 128.0
    return (data.astype(np.float64) / -float(np.iinfo(data.dtype).min)).astype(np.float32)


# ------------------------------------------------------------------------------------ video

VIDEO_HINT = "upload an MP4, MOV, WebM or MKV video"


@dataclass(frozen=True)
class VideoInfo(_Probed):
    """What probing a video found by decoding it: frame size, rate, frame count, length.

    Engines get this instead of a path: `rgb_frames()` and `frames_at()` decode the same file
    through the one video loader. A variable frame rate is taken at its average.
    """

    width: int
    height: int
    fps: Fraction
    frames: int
    codec: str
    container: str

    @property
    def seconds(self) -> float:
        return float(self.frames / self.fps)

    def rgb_frames(self) -> Iterator[np.ndarray]:
        """Every frame, in order, as HxWx3 uint8 RGB (at most `frames` of them)."""
        for frame in self._decoded():
            yield frame.to_ndarray(format="rgb24")

    def frames_at(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        """The frames at these (non-decreasing) indices, one decode pass; an index past the end
        gives the last frame. Only the frames asked for are converted to RGB."""
        wanted = iter(indices)
        target = next(wanted, None)
        last: av.VideoFrame | None = None
        for index, frame in enumerate(self._decoded()):
            last = frame
            if target is not None and target <= index:
                rgb = frame.to_ndarray(format="rgb24")
                while target is not None and target <= index:
                    yield rgb
                    target = next(wanted, None)
            if target is None:
                return
        if target is not None and last is not None:
            rgb = last.to_ndarray(format="rgb24")
            while target is not None:
                yield rgb
                target = next(wanted, None)

    def _decoded(self) -> Iterator[av.VideoFrame]:
        """Every decoded frame, in order (at most `frames` of them)."""
        container = open_video(self.path)
        with container:
            stream = container.streams.video[0]
            for index, frame in enumerate(container.decode(stream)):
                if index >= self.frames:
                    return
                yield frame


def sniff_video(path: Path) -> str:
    """The ffmpeg demuxer for this file, from its first bytes; InputError if not video we read."""
    with path.open("rb") as f:
        head = f.read(64)
    if not head:
        raise InputError(f"{path.name} is empty (0 bytes): upload the video again")
    if head[4:8] == b"ftyp":
        return "mov"  # MP4 and QuickTime: ffmpeg's one ISO-BMFF demuxer
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"  # MKV and WebM
    raise InputError(f"{path.name} is not a video file ({_describe_bytes(head)}): {VIDEO_HINT}")


def open_video(path: Path) -> av.container.InputContainer:
    """Open with the demuxer matching the file's bytes only (see the module docstring)."""
    container = _open_as(path, sniff_video(path), VIDEO_HINT)
    if not container.streams.video or container.streams.video[0].codec_context is None:
        container.close()
        raise InputError(
            f"{path.name} has no video stream dropreel can decode (an interrupted upload, or "
            f"audio only?): export it again, then {VIDEO_HINT}"
        )
    return container


def probe_video(path: Path, max_seconds: float, max_pixels: int) -> VideoInfo:
    """Check a video's size and length from its header, then decode it once (stopping at the
    limit) to count its frames. Refuses: not a video, no video stream, frames over the pixel
    limit or under 64 px a side, longer than `max_seconds`, no frames, damaged data."""
    name = path.name
    container = open_video(path)
    with container:
        stream = container.streams.video[0]
        fmt = container.format.name
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_size(
            name,
            (width, height),
            (MIN_IMAGE_SIDE, max_pixels),
            "export it at a lower resolution (1080p or less)",
            "video",
        )
        header_seconds = container.duration / av.time_base if container.duration else None
        if header_seconds and header_seconds > max_seconds * 1.01:
            raise InputError(_too_long(name, header_seconds, max_seconds))
        rate = stream.average_rate or stream.guessed_rate
        fps = Fraction(rate) if rate else None
        frames = 0
        try:
            for _ in container.decode(stream):
                frames += 1
                if fps and frames / fps > max_seconds * 1.01:
                    raise InputError(_too_long(name, float(frames / fps), max_seconds, True))
        except InputError:
            raise
        except Exception as err:
            raise InputError(
                f"{name} is truncated or damaged: decoding stopped after {frames} frames "
                f"({type(err).__name__}): export it again and upload the new file"
            ) from err
        codec = stream.codec_context.name
    if frames == 0 or not fps:
        raise InputError(f"{name} holds no video frames: {VIDEO_HINT}")
    return VideoInfo(path, width, height, fps, frames, codec, fmt)
