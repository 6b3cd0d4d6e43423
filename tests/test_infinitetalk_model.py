"""The adapter's wiring: audio reaches the output, per-frame grouping, fp8 storage, TeaCache."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk.model import (  # noqa: E402
    InfiniteTalkTransformer,
    TeaCacheBranch,
    group_audio_windows,
)
from tests.test_infinitetalk_keymap import TINY, model_config  # noqa: E402


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return InfiniteTalkTransformer(**model_config(TINY)).eval()


def _inputs(frames: int = 9):
    torch.manual_seed(1)
    lat_t = (frames - 1) // 4 + 1
    x = torch.randn(1, TINY["in_dim"], lat_t, 4, 4)
    text = torch.randn(1, 512, TINY["text_dim"])
    image = torch.randn(1, 5, TINY["image_dim"])
    windows = torch.randn(1, frames, 5, TINY["audio_layers"], TINY["audio_dim"])
    return x, torch.tensor([700.0]), text, image, windows


def test_grouping_follows_the_reference_window_layout():
    frames = (
        torch.arange(9.0)[None, :, None, None, None] * 10
        + torch.arange(5.0)[None, None, :, None, None]
    )
    first, latter = group_audio_windows(frames.expand(1, 9, 5, 1, 1), vae_scale=4, window=5)
    assert first.shape == (1, 1, 5, 1, 1) and latter.shape == (1, 2, 8, 1, 1)
    # latent frame 1 covers video frames 1-4: frame 1 offsets 0..2, frames 2-3 centre, frame 4 offsets 2..4
    assert latter[0, 0, :, 0, 0].tolist() == [10, 11, 12, 22, 32, 42, 43, 44]


@torch.no_grad()
def test_audio_changes_the_prediction_and_silence_is_not_no_audio(model):
    x, t, text, image, windows = _inputs()
    with_audio = model(x, t, text, image, audio_windows=windows)
    other = model(x, t, text, image, audio_windows=windows * -1)
    zeros = model(x, t, text, image, audio_windows=torch.zeros_like(windows))
    none = model(x, t, text, image)
    assert with_audio.shape == x[:, : TINY["out_dim"]].shape
    assert not torch.allclose(with_audio, other)
    assert not torch.allclose(zeros, none)  # zeroed features still pass through the projection
    tokens = model.audio_tokens(windows)
    assert tokens.shape == (1, 3, TINY["audio_tokens"], TINY["audio_out"])
    assert torch.allclose(model(x, t, text, image, audio_tokens=tokens), with_audio)


@torch.no_grad()
def test_fp8_weight_storage_stays_close_to_full_precision():
    torch.manual_seed(0)
    m = InfiniteTalkTransformer(**model_config(TINY)).eval()
    x, t, text, image, windows = _inputs()
    ref = m(x, t, text, image, audio_windows=windows)
    m.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.float32)
    assert m.blocks[0].attn1.to_q.weight.dtype == torch.float8_e4m3fn
    out = m(x, t, text, image, audio_windows=windows)
    assert torch.isfinite(out).all()
    assert (out - ref).abs().mean() < 0.1 * ref.abs().mean()


@torch.no_grad()
def test_teacache_skips_when_the_modulation_barely_moves(model):
    x, t, text, image, windows = _inputs()
    cache = TeaCacheBranch(threshold=0.1, coefficients=(0.0, 1.0, 0.0), warmup=1)  # rescale(x)=x
    first = model(x, t, text, image, audio_windows=windows, cache=cache)
    second = model(x, t + 1e-3, text, image, audio_windows=windows, cache=cache)
    assert cache.skipped == 1
    assert torch.allclose(first, second, atol=1e-4)
    model(x, t * 0 + 50.0, text, image, audio_windows=windows, cache=cache)
    assert cache.skipped == 1  # a big change computes again
