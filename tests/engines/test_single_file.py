"""Checkpoints published as one file load through diffusers' single-file loading.

LTX-Video's `fast` and `low_vram` run `ltxv-2b-0.9.8-distilled.safetensors`, which Lightricks
publishes only as one file in their own key layout (`model.diffusion_model.*`, `vae.*`). The
tiny copy is written in that layout (tests/tiny_models.py) and must load, by the engine's own
code, into exactly the weights the same tiny pipeline has in diffusers' layout: nothing
missing, nothing extra, and the frames the diffusers-layout checkpoint gives.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from safetensors import safe_open

from gpu.diffusers_models import LTX_VIDEO
from gpu.engine import RenderRequest
from gpu.ltx_video import LTXVideoEngine
from gpu.weights import local_snapshot


def request(profile: str) -> RenderRequest:
    return RenderRequest(
        kind="text_to_video",
        prompt="a red fox in the city",
        profile=profile,
        width=64,
        height=64,
        duration_seconds=0.2,
        seed=3,
    )


def test_the_tiny_single_file_is_in_lightricks_layout(tiny_cache):
    variant = LTX_VIDEO.variants["2b-distilled"]
    snapshot = local_snapshot(variant.repo, tiny_cache, "ltx-video")
    names = {p.name for p in snapshot.path.iterdir()}  # the upscaler's file is there too
    assert variant.single_file in names and all(n.endswith(".safetensors") for n in names)
    with safe_open(str(snapshot.path / str(variant.single_file)), "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.patchify_proj.weight" in keys
    assert "vae.decoder.last_scale_shift_table" in keys
    assert any(".res_blocks." in k for k in keys)
    assert not {k for k in keys if "proj_in" in k or ".resnets." in k or "time_embed." in k}
    assert all(k.startswith(("model.diffusion_model.", "vae.")) for k in keys)


def test_fast_loads_the_single_file_into_the_same_weights_and_frames(tiny_cache, monkeypatch):
    # `balanced` (13B distilled, diffusers layout) differs from `fast` in its recipe only by
    # the tone mapping of its upsampling: without it, the same weights make the same video.
    balanced_variant = LTX_VIDEO.variants["13b-distilled"]
    assert balanced_variant.multiscale is not None
    untoned = replace(balanced_variant.multiscale, tone_map=None)
    monkeypatch.setitem(
        LTX_VIDEO.variants, "13b-distilled", replace(balanced_variant, multiscale=untoned)
    )
    engine = LTXVideoEngine()
    engine.load()
    fast = engine.check_inputs(request("fast"))
    assert fast.describe()["file"] == "ltxv-2b-0.9.8-distilled.safetensors"
    assert fast.describe()["config"].startswith("Lightricks/LTX-Video-0.9.5@")
    fast_frames = np.stack(list(engine.render(fast)))
    single = {
        n: dict(getattr(engine.pipeline(fast), n).state_dict()) for n in ("transformer", "vae")
    }

    # The same tiny weights saved in diffusers' layout serve `balanced` (13B distilled repo).
    balanced = engine.check_inputs(request("balanced"))
    assert balanced.variant.single_file is None
    balanced_frames = np.stack(list(engine.render(balanced)))
    for name, weights in single.items():
        reference = getattr(engine.pipeline(balanced), name).state_dict()
        assert weights.keys() == reference.keys(), name
        assert all(torch.equal(weights[k], reference[k]) for k in weights), name
    assert fast_frames.shape == (fast.num_frames, 64, 64, 3)
    # Same weights, same seed: the same video (to one 8-bit level: the two loads lay tensors
    # out differently in memory, so float sums may round apart).
    assert np.abs(fast_frames.astype(int) - balanced_frames).max() <= 1
