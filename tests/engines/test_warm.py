"""A diffusers engine loads its default checkpoint before its first job (Modal's
`@modal.enter`), and what it loaded renders exactly what a fresh engine renders.

On Modal the checkpoint is staged in host memory before the memory snapshot, in the dtype of
the GPU the class will have, and moved onto the GPU after the restore. Here (no CUDA) the
staged copy is discarded and the checkpoint loaded afresh on the CPU, as a `.local()` run does.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpu.engine import RenderRequest
from gpu.ltx_video import LTXVideoEngine


def first_job(engine) -> np.ndarray:
    plan = engine.check_inputs(
        RenderRequest(
            kind="text_to_video",
            prompt="a red fox in the city",
            width=64,
            height=64,
            duration_seconds=0.2,
            steps=2,
            seed=5,
        )
    )
    return np.stack(list(engine.render(plan)))


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The checkpoints read from disk, by pipeline class."""
    seen: list[str] = []
    original = LTXVideoEngine._from_cache

    def counting(self, cls, plan):
        seen.append(f"{cls.__name__} {self.dtype}")
        return original(self, cls, plan)

    monkeypatch.setattr(LTXVideoEngine, "_from_cache", counting)
    return seen


def test_the_first_job_finds_the_default_checkpoint_loaded(tiny_cache, loads):
    engine = LTXVideoEngine()
    engine.load()
    assert "loaded to cpu" in engine.warm()
    assert loads == ["LTXConditionPipeline torch.float32"]

    frames = first_job(engine)

    assert loads == ["LTXConditionPipeline torch.float32"]  # the job read nothing from disk
    fresh = LTXVideoEngine()
    fresh.load()
    assert np.array_equal(frames, first_job(fresh))


def test_a_checkpoint_staged_for_a_gpu_is_reloaded_where_there_is_none(tiny_cache, loads):
    staged = LTXVideoEngine(device="cuda")  # what the snapshot is taken with on Modal
    staged.load()
    assert "host memory" in staged.warm(stage_on_cpu=True)
    pipe = next(iter(staged._pipes.values()))
    assert {p.device.type for p in pipe.transformer.parameters()} == {"cpu"}
    assert {p.dtype for p in pipe.transformer.parameters()} == {torch.bfloat16}

    assert "loaded to cpu" in staged.warm()  # restored without CUDA: loads afresh, float32
    assert loads == ["LTXConditionPipeline torch.bfloat16", "LTXConditionPipeline torch.float32"]
    fresh = LTXVideoEngine()
    fresh.load()
    assert np.array_equal(first_job(staged), first_job(fresh))
