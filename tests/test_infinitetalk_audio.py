"""The talking-head audio front end: decoding, loudness, wav2vec2 features, per-frame windows.

The same speech saved as 16/24/32-bit integer WAV, float WAV and MP3 must give the same features:
integer PCM reaches the encoder scaled to [-1, 1] and loudness-normalised like any other format.

Loudness is checked against an independent ITU-R BS.1770-4 computation written here (the
standard's published 48 kHz K-weighting coefficients, 400 ms blocks with 75 % overlap, absolute
and relative gates) and against the standard's calibration point (a 997 Hz sine at 0 dBFS reads
-3.01 LKFS).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
import soxr
from scipy.signal import lfilter, resample_poly

from gpu.media import probe_audio

torch = pytest.importorskip("torch")

from gpu.infinitetalk import audio  # noqa: E402
from infra.cli import samples  # noqa: E402
from tests import infinitetalk_tiny  # noqa: E402
from tests.bad_inputs import encode_audio  # noqa: E402

K_SHELF = (
    [1.53512485958697, -2.69169618940638, 1.19839281085285],
    [1.0, -1.69065929318241, 0.73248077421585],
)
K_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])


def bs1770_loudness(x: np.ndarray, rate: int) -> float:
    """Integrated loudness (LUFS) of mono `x`, computed at 48 kHz from the standard's tables."""
    if rate != 48_000:
        x = resample_poly(
            x.astype(np.float64), 48_000 // np.gcd(rate, 48_000), rate // np.gcd(rate, 48_000)
        )
    y = lfilter(*K_HIGHPASS, lfilter(*K_SHELF, x))
    block, hop = 19_200, 4_800
    powers = np.array([np.mean(y[i : i + block] ** 2) for i in range(0, len(y) - block + 1, hop)])
    loud = -0.691 + 10 * np.log10(powers + 1e-20)
    gated = powers[loud > -70]
    relative = -0.691 + 10 * np.log10(gated.mean()) - 10
    final = powers[(loud > -70) & (loud > relative)]
    return float(-0.691 + 10 * np.log10(final.mean()))


def _wav(data: np.ndarray, rate: int, path, subtype: str = "FLOAT") -> None:
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype=subtype)
    path.write_bytes(buf.getvalue())


def _speech(path) -> np.ndarray:
    """What the talking-head engine decodes: the probed recording through the one loader."""
    return probe_audio(path, max_seconds=600).samples(audio.SAMPLE_RATE)


@pytest.mark.parametrize("gain", [0.02, 0.3, 1.5])
def test_loudness_normalisation_reaches_minus_23_lufs_by_an_independent_meter(gain):
    speech = samples.voice_samples(6.0, rate=16_000, seed=3) * gain
    out = audio.loudness_normalize(speech)
    assert abs(bs1770_loudness(out, 16_000) - audio.TARGET_LUFS) < 0.2


def test_loudness_calibration_point_997_hz_sine():
    t = np.arange(16_000 * 4) / 16_000
    out = audio.loudness_normalize((0.7 * np.sin(2 * np.pi * 997 * t)).astype(np.float32))
    # -23 LUFS for a sine is a peak of 10 ** ((-23 + 3.01) / 20) = 0.1000
    assert 20 * np.log10(np.abs(out).max() / 0.1000) == pytest.approx(0.0, abs=0.15)


def test_silence_and_tiny_clips_are_left_alone():
    silent = np.zeros(16_000, np.float32)
    assert np.array_equal(audio.loudness_normalize(silent), silent)
    short = samples.voice_samples(0.2)
    assert np.array_equal(audio.loudness_normalize(short), short)


@pytest.mark.parametrize("rate", [8_000, 16_000, 22_050, 44_100, 48_000])
def test_any_rate_decodes_to_16k_mono_of_the_same_length(rate, tmp_path):
    seconds = 1.37
    path = tmp_path / f"v{rate}.wav"
    _wav(samples.voice_samples(seconds, rate=rate), rate, path)
    speech = _speech(path)
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert abs(len(speech) - seconds * 16_000) <= 2
    assert audio.frame_count(len(speech)) == int(seconds * 25)


def test_stereo_is_averaged_like_librosa(tmp_path):
    left = samples.voice_samples(1.0, rate=16_000, seed=1)
    right = samples.voice_samples(1.0, rate=16_000, seed=2)
    path = tmp_path / "st.wav"
    _wav(np.stack([left, right], axis=1), 16_000, path)
    speech = _speech(path)
    assert np.allclose(speech, (left + right) / 2, atol=1e-6)


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    root = tmp_path_factory.mktemp("w2v")
    infinitetalk_tiny._wav2vec(root)
    return audio.AudioEncoder.from_pretrained(root / "chinese-wav2vec2-base")


@pytest.mark.parametrize("seconds", [0.4, 1.0, 2.52])
def test_features_are_all_layers_at_25_fps(encoder, seconds):
    speech = samples.voice_samples(seconds)
    emb = encoder.embed(speech)
    cfg = encoder.model.config
    assert emb.shape == (int(seconds * 25), cfg.num_hidden_layers, cfg.hidden_size)
    assert torch.isfinite(emb).all()


def test_without_resampling_the_stack_equals_transformers_hidden_states(encoder):
    """At the CNN's own 50 Hz the interpolation is the identity: compare with transformers."""
    speech = samples.voice_samples(1.0)
    values = encoder.feature_extractor(speech, sampling_rate=16_000).input_values
    values = torch.as_tensor(np.asarray(values[0]))[None]
    with torch.no_grad():
        natural = encoder.model.feature_extractor(values).shape[-1]
        ref = encoder.model(values, output_hidden_states=True).hidden_states
    ours = encoder.embed(speech, frames=natural)
    assert len(ref) == encoder.model.config.num_hidden_layers + 1
    theirs = torch.stack(ref[1:], dim=2)[0]
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_frames_line_up_with_time(encoder):
    """A click at t lands in video frame round(t * 25) of the 25 fps CNN features."""
    rng = np.random.default_rng(0)
    speech = (0.001 * rng.normal(size=48_000)).astype(np.float32)  # 3 s
    for t in (0.52, 1.5, 2.4):
        burst = speech.copy()
        i = int(t * 16_000)
        burst[i : i + 160] += 0.8 * np.sin(np.arange(160) * 0.9)
        base = encoder.cnn_features(speech, 75)[0]
        hit = encoder.cnn_features(burst, 75)[0]
        energy = (hit - base).abs().sum(0)
        assert abs(int(energy.argmax()) - round(t * 25)) <= 1


def test_frame_windows_are_centred_and_clamped():
    emb = torch.arange(10.0)[:, None, None].expand(10, 2, 3)
    win = audio.frame_windows(emb, start=0, count=10)
    assert win.shape == (10, 5, 2, 3)
    assert win[0, :, 0, 0].tolist() == [0, 0, 0, 1, 2]
    assert win[5, :, 0, 0].tolist() == [3, 4, 5, 6, 7]
    assert win[9, :, 0, 0].tolist() == [7, 8, 9, 9, 9]
    late = audio.frame_windows(emb, start=8, count=4)
    assert late[-1, :, 0, 0].tolist() == [9, 9, 9, 9, 9]


VOICE_RATE = 44_100  # a CD-rate recording: MP3's low-pass sits above all that 16 kHz keeps
ENCODINGS = {
    # file: (how it is written, speech tolerance, feature tolerance (relative L2))
    # Integer PCM at 24 and 32 bits is exact to float32 rounding; so is float WAV.
    "voice-float.wav": (lambda x, p: _wav(x, VOICE_RATE, p, "FLOAT"), 1e-5, 1e-4),
    "voice-24bit.wav": (lambda x, p: _wav(x, VOICE_RATE, p, "PCM_24"), 1e-5, 1e-4),
    "voice-32bit.wav": (lambda x, p: _wav(x, VOICE_RATE, p, "PCM_32"), 1e-5, 1e-4),
    # 16-bit rounding noise is ~-96 dBFS: the samples stay within 1e-4, and the random tiny
    # wav2vec2 (untrained, so it does not ignore noise) moves its features by ~0.2 %.
    "voice-16bit.wav": (lambda x, p: _wav(x, VOICE_RATE, p, "PCM_16"), 1e-4, 5e-3),
    # MP3 is lossy: at 320 kbps its coding noise is ~-75 dB below the speech (samples within
    # 1e-3) and moves the tiny model's features by ~1 %. It decodes sample-aligned (the LAME
    # header tells ffmpeg the encoder delay), so any misalignment would fail this by far.
    "voice.mp3": (
        lambda x, p: p.write_bytes(
            encode_audio("mp3", "libmp3lame", rate=VOICE_RATE, signal=x, bit_rate=320_000)
        ),
        1e-3,
        3e-2,
    ),
}


@pytest.mark.parametrize("name", list(ENCODINGS))
def test_every_encoding_of_the_same_speech_gives_the_same_features(encoder, tmp_path, name):
    voice = samples.voice_samples(3.0, rate=VOICE_RATE, seed=5)
    # The reference front end, computed without our loader: soxr at librosa's quality.
    reference = audio.loudness_normalize(soxr.resample(voice, VOICE_RATE, 16_000, quality="HQ"))
    expected = encoder.embed(reference)
    assert abs(bs1770_loudness(reference, 16_000) - audio.TARGET_LUFS) < 0.2

    write, speech_tolerance, feature_tolerance = ENCODINGS[name]
    write(voice, tmp_path / name)
    speech, features = audio.speech_features(probe_audio(tmp_path / name, 600), encoder)

    assert speech.shape == reference.shape
    assert np.abs(speech - reference).max() < speech_tolerance
    assert features.shape == expected.shape
    assert float((features - expected).norm() / expected.norm()) < feature_tolerance
