"""A job's profile never changes the next job: profiles in sequence on one loaded engine.

The tiny checkpoints have two transformer blocks, so First-Block Cache and fp8 layerwise
casting hook into real blocks on CPU (`speed_on_cpu=True`: on CUDA the same code runs, plus
the attention backend and compile). Each job's transformer dtype, hooks, recorded settings and
frames must be those the same job gets on a fresh engine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu.engine import RenderRequest
from gpu.hunyuan15 import HunyuanVideo15Engine
from gpu.ltx_video import LTXVideoEngine
from gpu.wan22 import Wan22Engine

SEQUENCE = ["low_vram", "balanced", "fast", "low_vram"]
FP8 = torch.float8_e4m3fn


def hooks(module: torch.nn.Module) -> set[str]:
    """The diffusers hooks registered anywhere in `module`."""
    names: set[str] = set()
    for sub in module.modules():
        registry = getattr(sub, "_diffusers_hook", None)
        if registry is not None:
            names |= set(registry.hooks)
    return names


def job(engine, profile: str):
    plan = engine.check_inputs(
        RenderRequest(
            kind="text_to_video",
            prompt="a red fox in the city",
            profile=profile,
            width=64,
            height=64,
            duration_seconds=0.2,
            steps=3,
            seed=5,
        )
    )
    frames = np.stack(list(engine.render(plan)))
    transformer = engine.pipeline(plan).transformer
    dtypes = {p.dtype for p in transformer.parameters()}
    return frames, dtypes, hooks(transformer), plan.describe()["speed"]


@pytest.mark.parametrize("engine_cls", [LTXVideoEngine, Wan22Engine, HunyuanVideo15Engine])
def test_each_job_gets_its_own_profile(tiny_cache, engine_cls):
    engine = engine_cls(speed_on_cpu=True)
    engine.load()
    for index, profile in enumerate(SEQUENCE):
        frames, dtypes, hook_names, speed = job(engine, profile)
        speed_features = engine.spec.profiles[profile].speed
        fresh = engine_cls(speed_on_cpu=True)
        fresh.load()
        alone, alone_dtypes, alone_hooks, alone_speed = job(fresh, profile)

        where = f"job {index + 1} ({profile}) after {SEQUENCE[:index]}"
        assert (FP8 in dtypes) == speed_features.fp8_storage, where
        assert ("layerwise_casting" in hook_names) == speed_features.fp8_storage, where
        cached = speed_features.cache_threshold is not None
        assert ("fbc_leader_block_hook" in hook_names) == cached, where
        assert speed.get("fp8_storage", "").startswith("on") == speed_features.fp8_storage, where
        assert speed.get("cache", "").startswith("on") == cached, where
        assert (dtypes, hook_names, speed) == (alone_dtypes, alone_hooks, alone_speed), where
        assert np.array_equal(frames, alone), where


def test_speed_on_cpu_is_off_by_default(tiny_cache):
    engine = LTXVideoEngine()
    engine.load()
    _, dtypes, hook_names, speed = job(engine, "low_vram")
    assert FP8 not in dtypes and not hook_names
    assert all(v.startswith("skipped on cpu") for v in speed.values())
