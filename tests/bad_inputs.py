"""The bad-input corpus: files people (or attackers) really drop, each made in code.

Every case is a folder's worth of files plus the words its error must contain: the file's name
and the problem. Big cases stay small on disk: the 30000x30000 PNG is a real 1-bit image whose
zlib stream of zero rows is ~110 KB, and three hours of audio are recorded at 100 Hz.
"""

from __future__ import annotations

import functools
import io
import json
import struct
import zlib
from dataclasses import dataclass, field

import av
import numpy as np
import soundfile as sf
from PIL import Image

from infra.cli import samples


@dataclass(frozen=True)
class Case:
    """A folder of files that must fail, the job it makes, and words its error must contain."""

    id: str
    files: dict[str, bytes]
    expect: tuple[str, ...]
    job_stem: str = ""
    settings: dict = field(default_factory=dict)

    @property
    def stem(self) -> str:
        if self.job_stem:
            return self.job_stem
        images = [n for n in self.files if n.lower().endswith((".png", ".jpg", ".jpeg", ".webp"))]
        return images[0].rpartition(".")[0] if images else "prompt"


# ------------------------------------------------------------------------- building blocks


@functools.cache
def good_png() -> bytes:
    return samples.portrait_png(width=240, height=320)


@functools.cache
def good_wav() -> bytes:
    return samples.voice_wav(seconds=1.5)


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(width: int = 320, height: int = 240) -> bytes:
    img = Image.open(io.BytesIO(good_png())).convert("RGB").resize((width, height))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.cache
def flat_png(width: int, height: int, bit_depth: int = 8, colour: int = 6) -> bytes:
    """A genuine width x height PNG of zero rows (colour 6: RGBA, 0: gray, 3: palette with a
    transparent entry): millions of pixels in a file of kilobytes."""
    bands = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    row = b"\x00" * (1 + (width * bands * bit_depth + 7) // 8)  # filter byte + samples
    packer = zlib.compressobj(9)
    parts = [packer.compress(row * min(1000, height - top)) for top in range(0, height, 1000)]
    parts.append(packer.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    palette = _chunk(b"PLTE", b"\x00" * 768) + _chunk(b"tRNS", b"\x00") if colour == 3 else b""
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + palette
        + _chunk(b"IDAT", b"".join(parts))
        + _chunk(b"IEND", b"")
    )


def png_bomb(side: int = 30_000) -> bytes:
    """A genuine side x side 1-bit grayscale PNG: 900 M pixels in ~110 KB (zero rows compress)."""
    return flat_png(side, side, 1, 0)


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height RGB but holds ~100 bytes of pixel data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64) + b"\x17" * 40
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


def png_bad_crc() -> bytes:
    data = bytearray(good_png())
    idat = data.find(b"IDAT")
    data[idat + 40 : idat + 60] = b"\x00" * 20  # damage the compressed pixels, CRC now wrong
    return bytes(data)


def png_metadata_bomb(chunk: bytes) -> bytes:
    """A good PNG with a text (zTXt) or colour-profile (iCCP) chunk of 20 MB zipped to ~20 KB."""
    data = good_png()
    body = b"bomb\x00\x00" + zlib.compress(b"a" * (20 * 2**20), 9)
    return data[:33] + _chunk(chunk, body) + data[33:]  # right after IHDR


def wav(samples_: np.ndarray, rate: int, subtype: str = "PCM_16") -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples_, rate, format="WAV", subtype=subtype)
    return buf.getvalue()


def encode_audio(
    fmt: str,
    codec: str,
    seconds: float = 3.0,
    rate: int = 16_000,
    signal: np.ndarray | None = None,
    bit_rate: int | None = None,
) -> bytes:
    """Voice-like audio (or `signal`, mono float32) encoded with PyAV (mp3, m4a) in memory."""
    signal = samples.voice_samples(seconds, rate) if signal is None else signal
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(signal[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        ctx = stream.codec_context
        resampler = av.AudioResampler(
            format=ctx.format.name, layout="mono", rate=rate, frame_size=ctx.frame_size or 1152
        )
        for chunk in [*resampler.resample(frame), *resampler.resample(None)]:
            out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return buf.getvalue()


def flac(seconds: float = 3.0) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples.voice_samples(seconds), 16_000, format="FLAC")
    return buf.getvalue()


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def three_hours_wav() -> bytes:
    """Three hours of a tone at 100 Hz sampling, 8-bit: a real 3 h file of ~1 MB."""
    rate, seconds = 100, 3 * 3600
    t = np.arange(rate * seconds) / rate
    return wav((0.5 * np.sin(2 * np.pi * 7 * t)).astype(np.float32), rate, "PCM_U8")


def unknown_codec_wav() -> bytes:
    """A WAV whose format tag (0x1234) names no codec anyone decodes."""
    data = bytearray(samples.voice_wav(seconds=1.5))
    data[20:22] = struct.pack("<H", 0x1234)
    return bytes(data)


def nan_wav() -> bytes:
    signal = samples.voice_samples(1.5)
    signal[100:200] = np.nan
    return wav(signal, 16_000, "FLOAT")


def with_image(name: str, data: bytes) -> dict[str, bytes]:
    """A talking-head folder: the bad image beside a good voice recording."""
    return {name: data, "voice.wav": good_wav()}


def with_audio(name: str, data: bytes, image: str = "face.png") -> dict[str, bytes]:
    """A talking-head folder: a good portrait beside the bad audio."""
    return {image: good_png(), name: data}


def prompt(data: bytes | str | dict, name: str = "prompt.json") -> dict[str, bytes]:
    if isinstance(data, dict):
        data = json.dumps(data)
    if isinstance(data, str):
        data = data.encode()
    return {name: data}


HLS_PLAYLIST = (
    b"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"
)


# ------------------------------------------------------------------------------- the corpus


def cases() -> list[Case]:
    gif = io.BytesIO()
    Image.new("RGB", (200, 200), (200, 40, 40)).save(gif, format="GIF")
    return [
        # images (each beside a good voice.wav: a talking-head job)
        Case("img-empty", with_image("empty.png", b""), ("empty.png", "empty")),
        Case(
            "img-text-as-png",
            with_image("Résumé 2024+final.png", b"this is not a picture, just text\n" * 20),
            ("Résumé 2024+final.png", "not an image"),
        ),
        Case(
            "img-truncated-png",
            with_image("cut.png", half(good_png())),
            ("cut.png", "truncated or damaged"),
        ),
        Case(
            "img-truncated-jpeg",
            with_image("cut.jpg", half(jpeg_bytes())),
            ("cut.jpg", "truncated or damaged"),
        ),
        Case(
            "img-bomb-30000",
            with_image("huge.png", png_bomb()),
            ("huge.png", "30000x30000", "900,000,000 pixels", "over the limit"),
        ),
        Case(
            "img-header-claims-30000",
            with_image("header.png", png_claiming(30_000, 30_000)),
            ("header.png", "30000x30000", "over the limit"),
        ),
        Case("img-gif-as-png", with_image("anim.png", gif.getvalue()), ("anim.png", "GIF image")),
        Case(
            "img-one-pixel",
            with_image("dot.png", png_bytes(Image.new("RGB", (1, 1)))),
            ("dot.png", "1x1 pixels", "at least 64"),
        ),
        Case(
            "img-strip",
            with_image("strip.png", png_bytes(Image.new("RGB", (5000, 100), (9, 9, 9)))),
            ("strip.png", "5000x100", "50:1"),
        ),
        Case(
            "img-bad-crc", with_image("crc.png", png_bad_crc()), ("crc.png", "truncated or damaged")
        ),
        Case(
            "img-html-as-webp",
            with_image("page.webp", b"<!doctype html><html><body>hi</body></html>"),
            ("page.webp", "not an image"),
        ),
        Case(
            "img-dots-in-name",
            with_image("weird..name.jpeg", b"\xff\xd8\xff\xe0" + b"\x00" * 64),
            ("weird..name.jpeg", "not an image"),
        ),
        # audio (each beside a good face.png: a talking-head job)
        Case("aud-empty", with_audio("empty.wav", b""), ("empty.wav", "empty")),
        Case(
            "aud-text-as-mp3",
            with_audio("notes.mp3", b"Dear diary, today I recorded nothing.\n" * 10),
            ("notes.mp3", "not an audio file", "text"),
        ),
        Case(
            "aud-png-as-wav",
            with_audio("photo.wav", good_png()),
            ("photo.wav", "not an audio file", "PNG"),
        ),
        Case(
            "aud-playlist-as-mp3",
            with_audio("stream.mp3", HLS_PLAYLIST),
            ("stream.mp3", "not an audio file"),
        ),
        Case(
            "aud-truncated-wav",
            with_audio("cut.wav", half(samples.voice_wav(seconds=3.0))),
            ("cut.wav", "truncated"),
        ),
        Case(
            "aud-truncated-mp3",
            with_audio("cut.mp3", encode_audio("mp3", "libmp3lame")[:3000]),
            ("cut.mp3", "truncated"),
        ),
        Case(
            "aud-truncated-flac",
            with_audio("cut.flac", half(flac())),
            ("cut.flac", "truncated or damaged"),
        ),
        Case(
            "aud-truncated-m4a",
            with_audio("cut.m4a", half(encode_audio("ipod", "aac"))),
            ("cut.m4a", "truncated or damaged"),
        ),
        Case(
            "aud-three-hours",
            with_audio("podcast.wav", three_hours_wav()),
            ("podcast.wav", "3.0 hours long", "limit is 10.0 minutes"),
        ),
        Case(
            "aud-silence",
            with_audio("quiet.wav", wav(np.zeros(16_000 * 2, np.float32), 16_000)),
            ("quiet.wav", "silent", "digital silence"),
        ),
        Case(
            "aud-near-silence",
            with_audio(
                "hiss.wav",
                wav(
                    (1e-4 * np.random.default_rng(0).standard_normal(32_000)).astype(np.float32),
                    16_000,
                    "FLOAT",
                ),
            ),
            ("hiss.wav", "silent", "dBFS"),
        ),
        Case(
            "aud-too-short",
            with_audio("blip.wav", samples.voice_wav(seconds=0.1)),
            ("blip.wav", "0.10 s long", "at least 0.5 s"),
        ),
        Case("aud-nan", with_audio("nan.wav", nan_wav()), ("nan.wav", "NaN")),
        Case(
            "aud-header-only",
            with_audio("hollow.wav", wav(np.zeros(0, np.float32), 16_000)),
            ("hollow.wav", "no audio samples"),
        ),
        Case(
            "aud-mp3-garbage",
            with_audio(
                "noise.mp3", b"\xff\xfb\x90\x00" + bytes(np.random.default_rng(1).bytes(4000))
            ),
            ("noise.mp3",),
        ),
        Case(
            "aud-ogg-garbage",
            with_audio("voice ☕.ogg", b"OggS" + b"\x00" * 200),
            ("voice ☕.ogg", "truncated or damaged"),
        ),
        # prompt.json (alone: a text-to-video job)
        Case("json-empty", prompt(b""), ("prompt.json", "empty")),
        Case("json-blank", prompt(b"  \n\t \n"), ("prompt.json", "empty")),
        Case(
            "json-invalid",
            prompt(b'{"prompt": "a boat",}'),
            ("prompt.json", "not valid JSON", "line 1"),
        ),
        Case(
            "json-huge",
            prompt({"prompt": "boat", "negative_prompt": "x" * 100_000}),
            ("prompt.json", "at most 65,536 bytes"),
        ),
        Case(
            "json-unknown-field",
            prompt({"promt": "a boat"}),
            ("prompt.json", "unknown field 'promt'", "allowed fields"),
        ),
        Case(
            "json-wrong-type",
            prompt({"prompt": "a boat", "width": "512"}),
            ("prompt.json", 'width = "512"', "whole number from 64 to 4096"),
        ),
        Case(
            "json-negative",
            prompt({"prompt": "a boat", "seed": -7}),
            ("prompt.json", "seed = -7", "from 0 to 4294967295"),
        ),
        Case(
            "json-absurd",
            prompt({"prompt": "a boat", "duration_seconds": 1e6}),
            ("prompt.json", "duration_seconds = 1000000.0", "at most 600"),
        ),
        Case(
            "json-nan",
            prompt(b'{"prompt": "a boat", "guidance": NaN}'),
            ("prompt.json", "NaN", "not a finite number"),
        ),
        Case("json-deep", prompt(b"[" * 40_000), ("prompt.json", "nested too deeply")),
        Case(
            "json-array",
            prompt(b'["a boat"]'),
            ("prompt.json", "must hold a JSON object", "not a list"),
        ),
        Case(
            "json-duplicate",
            prompt(b'{"prompt": "a boat", "prompt": "a car"}'),
            ("prompt.json", "'prompt' twice"),
        ),
        Case("json-no-prompt", prompt({"fps": 24}), ("prompt.json", 'no "prompt"')),
        Case(
            "json-unknown-engine",
            prompt({"prompt": "a boat", "engine": "sora-9000"}),
            ("prompt.json", "no engine named 'sora-9000'"),
        ),
        Case(
            "json-task-mismatch",
            prompt({"prompt": "a boat", "task": "talking_head"}),
            ("task='talking_head'", "text_to_video"),
        ),
        Case(
            "json-latin1",
            prompt('{"prompt": "crème brûlée"}'.encode("latin-1")),
            ("prompt.json", "not UTF-8"),
        ),
        Case(
            "json-control-char",
            prompt({"prompt": "a boat\u0007 ringing"}),
            ("prompt.json", "control character U+0007"),
        ),
        Case(
            "json-aspect",
            prompt({"prompt": "a boat", "width": 4096, "height": 64}),
            ("prompt.json", "4096x64", "at most 4:1"),
        ),
        Case(
            "img-png-text-bomb",
            with_image("notes.png", png_metadata_bomb(b"zTXt")),
            ("notes.png", "metadata", "unpacks to more than 1 MB"),
        ),
        Case(
            "img-png-icc-bomb",
            with_image("profile.png", png_metadata_bomb(b"iCCP")),
            ("profile.png", "metadata", "unpacks to more than 1 MB"),
        ),
        Case(
            "aud-unknown-codec",
            with_audio("odd codec.wav", unknown_codec_wav()),
            ("odd codec.wav", "codec dropreel cannot decode", "16-bit PCM WAV"),
        ),
        Case(
            "json-lone-surrogate",
            prompt(b'{"prompt": "a boat", "engine": "x\\ud800"}'),
            ("prompt.json", "lone surrogate"),
        ),
        Case(
            "json-5001-digits",
            prompt(b'{"prompt": "a boat", "width": 1' + b"0" * 5000 + b"}"),
            ("prompt.json", "width = a 5,001-digit number", "whole number from 64 to 4096"),
        ),
        Case(
            "pair-two-audios",
            {
                "face.png": good_png(),
                "take 1.wav": good_wav(),
                "take 2.mp3": encode_audio("mp3", "libmp3lame"),
            },
            ("face.png", "2 audio files", "take 1.wav, take 2.mp3", "face.wav"),
        ),
        Case(
            "json-named-unicode",
            prompt(b"{", name="ünïcødé clip.prompt.json"),
            ("ünïcødé clip.prompt.json", "not valid JSON"),
            job_stem="ünïcødé clip",
        ),
    ]
