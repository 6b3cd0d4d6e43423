"""Image and audio preparation: orientation, colour, shape, every audio format, alignment."""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from gpu.encode import encode_mp4
from gpu.errors import InputError
from gpu.media import fit_cover, load_audio, load_image, probe_audio
from infra.cli import samples
from infra.cli.main import main
from tests.bad_inputs import encode_audio, flac, wav


def _save(tmp_path: Path, name: str, img: Image.Image, **kw) -> Path:
    path = tmp_path / name
    img.save(path, **kw)
    return path


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (200, 100), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 100, 100))  # left half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    out = load_image(_save(tmp_path, "phone.jpg", img, exif=exif.tobytes()), 10**8)
    assert out.size == (100, 200)  # portrait, as the phone showed it
    top = np.asarray(out)[10, 50]
    assert top[2] > 200 and top[0] < 60  # the blue half is now on top


@pytest.mark.parametrize(
    ("mode", "colour"), [("RGBA", (0, 0, 0, 0)), ("LA", (0, 0)), ("L", 128), ("CMYK", (0, 0, 0, 0))]
)
def test_any_mode_becomes_rgb(tmp_path, mode, colour):
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    path = _save(tmp_path, f"x.{fmt.lower()}", Image.new(mode, (80, 80), colour), format=fmt)
    out = load_image(path, 10**8)
    assert out.mode == "RGB"
    if mode in ("RGBA", "LA"):  # fully transparent is laid over white, not black
        assert np.asarray(out).min() == 255


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    data = np.full((80, 80), 32768, np.uint16)
    path = _save(tmp_path, "deep.png", Image.fromarray(data))
    out = np.asarray(load_image(path, 10**8))
    assert 120 <= out.mean() <= 135


def test_fit_cover_crops_without_distortion():
    img = Image.new("RGB", (400, 200), (0, 0, 0))
    img.paste((255, 255, 255), (150, 50, 250, 150))  # a 100x100 white square in the middle
    out = np.asarray(fit_cover(img, 128, 128))
    assert out.shape == (128, 128, 3)
    white = out[..., 0] > 128
    rows, cols = white.any(axis=1).sum(), white.any(axis=0).sum()
    assert abs(rows - cols) <= 2  # still a square: cropped, not squeezed


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


AUDIO = {
    "voice.wav": lambda: samples.voice_wav(seconds=2.0, rate=44_100, channels=2),
    "voice.mp3": lambda: encode_audio("mp3", "libmp3lame", seconds=2.0, rate=24_000),
    "voice.m4a": lambda: encode_audio("ipod", "aac", seconds=2.0, rate=22_050),
    "voice.flac": lambda: flac(seconds=2.0),
    "voice.ogg": lambda: _soundfile_ogg(2.0),
    "voice.opus": lambda: encode_audio("ogg", "libopus", seconds=2.0, rate=48_000),
}


def _soundfile_ogg(seconds: float) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, samples.voice_samples(seconds), 16_000, format="OGG", subtype="VORBIS")
    return buf.getvalue()


@pytest.mark.parametrize("name", list(AUDIO))
def test_every_audio_format_decodes_to_16k_mono(tmp_path, name):
    path = _write(tmp_path, name, AUDIO[name]())
    info = probe_audio(path, max_seconds=600)
    assert 1.9 < info.seconds < 2.2
    signal = load_audio(path, 16_000)
    assert signal.dtype == np.float32 and signal.ndim == 1
    assert abs(signal.size - info.seconds * 16_000) < 16_000 * 0.06
    assert 0.05 < np.abs(signal).max() <= 1.0


def test_stereo_is_averaged_not_summed(tmp_path):
    left = samples.voice_samples(1.0)
    stereo = np.stack([left, -left * 0 + left], axis=1) * 3.5  # near full scale on both sides
    path = _write(tmp_path, "loud.wav", wav(np.clip(stereo, -1, 1), 16_000, "FLOAT"))
    assert np.abs(load_audio(path, 16_000)).max() <= 1.0


def test_audio_limit_stops_decoding(tmp_path):
    path = _write(tmp_path, "long.wav", samples.voice_wav(seconds=5.0))
    with pytest.raises(InputError, match=r"long.wav is .*5.0 seconds long; the limit is 2.0"):
        probe_audio(path, max_seconds=2.0)


def test_audio_is_aligned_to_the_video(tmp_path):
    """Shorter audio is padded with silence and longer audio cut: both streams end together."""
    audio = _write(tmp_path, "v.wav", samples.voice_wav(seconds=1.0, rate=16_000))
    frames = (np.full((64, 96, 3), i * 4, np.uint8) for i in range(50))  # 2.0 s at 25 fps
    result = encode_mp4(frames, 25, tmp_path / "out.mp4", audio=audio)
    assert result.frames == 50 and result.has_audio
    with av.open(str(tmp_path / "out.mp4")) as mp4:
        got = sum(f.samples for f in mp4.decode(audio=0))
    assert abs(got / 48_000 - 2.0) < 0.05
    frames = (np.zeros((64, 96, 3), np.uint8) for _ in range(10))  # 0.4 s: audio is cut
    encode_mp4(frames, 25, tmp_path / "short.mp4", audio=audio)
    with av.open(str(tmp_path / "short.mp4")) as mp4:
        got = sum(f.samples for f in mp4.decode(audio=0))
    assert abs(got / 48_000 - 0.4) < 0.05


def test_schema_command_prints_the_prompt_schema(capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["width"]["anyOf"][0]["maximum"] == 4096
    assert "prompt" in schema["properties"]
