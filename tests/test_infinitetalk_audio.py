"""The talking-head audio front end: decoding, loudness, wav2vec2 features, per-frame windows.

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
from scipy.signal import lfilter, resample_poly

torch = pytest.importorskip("torch")

from gpu.infinitetalk import audio  # noqa: E402
from infra.cli import samples  # noqa: E402
from tests import infinitetalk_tiny  # noqa: E402

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


def _wav(data: np.ndarray, rate: int, path) -> None:
    buf = io.BytesIO()
    sf.write(buf, data, rate, format="WAV", subtype="FLOAT")
    path.write_bytes(buf.getvalue())


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
    speech = audio.load_speech(path)
    assert speech.dtype == np.float32 and speech.ndim == 1
    assert abs(len(speech) - seconds * 16_000) <= 2
    assert audio.frame_count(len(speech)) == int(seconds * 25)


def test_stereo_is_averaged_like_librosa(tmp_path):
    left = samples.voice_samples(1.0, rate=16_000, seed=1)
    right = samples.voice_samples(1.0, rate=16_000, seed=2)
    path = tmp_path / "st.wav"
    _wav(np.stack([left, right], axis=1), 16_000, path)
    speech = audio.load_speech(path)
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
