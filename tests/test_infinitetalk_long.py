"""Issue 14, point 6: long renders stay on model.

Every clip's frames are colour-matched to the portrait (the reference's `match_and_blend_colors`,
applied per clip, and the matched frames are what the next clip continues from), and the
re-anchoring option restarts a clip from the portrait every N clips instead of from the motion
frames of the clip before.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk import pipeline  # noqa: E402
from gpu.infinitetalk.engine import InfiniteTalkEngine  # noqa: E402
from gpu.infinitetalk.sampler import _rgb_to_lab, frame_plan  # noqa: E402
from infra.cli import samples  # noqa: E402
from tests.helpers import decoded_request  # noqa: E402
from tests.test_infinitetalk_engine import TINY_PROFILES, engine, tiny_weights  # noqa: E402, F401


def _request(tmp_path, clips: int = 3):
    profile = TINY_PROFILES["balanced"]
    clip, motion = profile.clip_frames, profile.motion_frames
    total = clip + (clips - 1) * (clip - motion)
    wav = tmp_path / "v.wav"
    wav.write_bytes(samples.voice_wav(total / 25 + 0.01, rate=16000))
    png = tmp_path / "f.png"
    png.write_bytes(samples.portrait_png(64, 64))
    return decoded_request("talking_head", image=png, audio=wav), total


def _lab_means(frames: list[np.ndarray]) -> torch.Tensor:
    rgb = torch.from_numpy(np.stack(frames)).double() / 255
    return _rgb_to_lab(rgb).reshape(len(frames), -1, 3).mean(1)


def test_every_clip_keeps_the_portraits_colours(engine, tmp_path):  # noqa: F811
    request, _ = _request(tmp_path)
    plan = engine.check_inputs(request)
    assert plan.describe()["color_match"] == 1.0 and plan.clips == 3
    portrait = pipeline.fit_to_bucket(request.image, plan.width, plan.height)
    target = _rgb_to_lab(((portrait.permute(1, 2, 0) + 1) / 2).double()).reshape(-1, 3).mean(0)
    matched = _lab_means(list(engine.render(plan)))
    unmatched_plan = replace(plan, profile=replace(plan.profile, color_match=0.0))
    unmatched = _lab_means(list(engine.render(unmatched_plan)))
    # per frame, across all three clips: the portrait's mean lightness and colour, to 8-bit rounding
    assert (matched - target).abs().max() < 1.5
    assert (unmatched - target).abs().max() > 3 * (matched - target).abs().max()


def test_reanchoring_restarts_clips_from_the_portrait(tiny_weights, engine, tmp_path, monkeypatch):  # noqa: F811
    request, total = _request(tmp_path, clips=4)
    profile = TINY_PROFILES["balanced"]
    new_per_clip = profile.clip_frames - profile.motion_frames
    anchored = InfiniteTalkEngine(
        weights_dir=tiny_weights,
        profiles=TINY_PROFILES,
        device="cpu",
        reanchor_seconds=2 * new_per_clip / 25,  # every second clip
    )
    anchored.components = engine.components  # the same loaded weights
    conditions: list[torch.Tensor] = []
    real = pipeline.sample

    def spy(velocity, noise, condition, *args):
        conditions.append(condition.clone())
        return real(velocity, noise, condition, *args)

    monkeypatch.setattr(pipeline, "sample", spy)
    plan = anchored.check_inputs(request)
    assert plan.reanchor_every == 2 and plan.describe()["reanchor_every_clips"] == 2
    frames = list(anchored.render(plan))
    assert len(frames) == total
    assert len(frame_plan(total, profile.clip_frames, profile.motion_frames)) == 4
    motion_latents = (profile.motion_frames - 1) // 4 + 1
    assert [c.shape[1] for c in conditions] == [1, motion_latents, 1, motion_latents]
    assert torch.allclose(conditions[2], conditions[0])  # clip 3 starts again from the portrait

    conditions.clear()
    list(engine.render(engine.check_inputs(request)))  # the default: never re-anchored
    assert [c.shape[1] for c in conditions] == [1, motion_latents, motion_latents, motion_latents]
