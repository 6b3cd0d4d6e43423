"""Sampler facts from the reference: schedule with shift, guidance combinations, clip plan."""

from __future__ import annotations

import itertools
import json

import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk.sampler import (  # noqa: E402
    Guidance,
    _lab_to_rgb,
    _rgb_to_lab,
    frame_plan,
    match_colors,
    sample,
    snap_frames,
    timesteps,
)


def test_schedule_is_shifted_linspace_1000_to_1_then_0():
    ts = timesteps(40, shift=7.0)
    assert len(ts) == 41 and ts[0] == pytest.approx(1000.0) and ts[-1] == 0.0
    s = (1000 - 999 / 39 * 20) / 1000  # the 21st linspace value
    assert ts[20] == pytest.approx(7 * s / (1 + 6 * s) * 1000, rel=1e-5)
    assert all(a > b for a, b in itertools.pairwise(ts))
    assert timesteps(8, shift=1.0)[3] == pytest.approx(1000 - 999 / 7 * 3, rel=1e-5)


def test_guidance_three_passes_and_two_when_text_scale_is_one():
    c, dt, u, da = (torch.tensor([v]) for v in (5.0, 3.0, 1.0, 2.0))
    g = Guidance(text=5.0, audio=4.0)
    assert g.branches == ("cond", "drop_text", "uncond")
    assert g.combine({"cond": c, "drop_text": dt, "uncond": u}).item() == 1 + 5 * 2 + 4 * 2
    g1 = Guidance(text=1.0, audio=2.0)
    assert g1.branches == ("cond", "drop_audio")
    assert g1.combine({"cond": c, "drop_audio": da}).item() == 2 + 2 * 3


def test_euler_flow_matching_recovers_x0_for_a_perfect_velocity():
    x0 = torch.randn(4, 3, 2, 2)
    noise = torch.randn_like(x0)
    cond = x0[:, :1]

    def velocity(latents, t, branch):
        return noise - x0  # the exact flow velocity of x_t = (1 - s) x0 + s noise

    out = sample(velocity, noise, cond, steps=5, shift=7.0, guidance=Guidance(1.0, 1.0))
    assert torch.allclose(out, x0, atol=1e-5)


@pytest.mark.parametrize("total", [5, 13, 81, 82, 153, 225, 1001])
def test_clip_plan_covers_every_frame_once(total):
    plan = frame_plan(total, clip=81, motion=9)
    covered = []
    for i, (start, length) in enumerate(plan):
        assert (length - 1) % 4 == 0 and length <= 81
        new_from = start if i == 0 else start + 9
        covered.extend(range(new_from, start + length))
    assert covered[:total] == list(range(total))
    if len(plan) == 1:
        assert len(covered) - total < 4
    else:  # as the reference: full clips, the last one trimmed (issue 14, point 1)
        assert {length for _, length in plan} == {81} and len(covered) - total < 81 - 9


def test_snap_never_outlasts_the_audio():
    assert [snap_frames(n) for n in (1, 4, 5, 8, 9, 83)] == [1, 1, 5, 5, 9, 81]


def test_colour_match_moves_statistics_to_the_reference():
    ref = torch.rand(8, 8, 3) * 0.5 + 0.25
    frames = (ref[None] * 0.6 + 0.3).repeat(2, 1, 1, 1)
    out = match_colors(frames, ref, 1.0)
    lab_ref = _rgb_to_lab(ref.double()).reshape(-1, 3)
    lab_out = _rgb_to_lab(out[0].double()).reshape(-1, 3)
    assert torch.allclose(lab_out.mean(0), lab_ref.mean(0), atol=0.5)
    assert torch.allclose(lab_out.std(0), lab_ref.std(0), rtol=0.05)
    assert torch.allclose(_lab_to_rgb(_rgb_to_lab(ref.double())), ref.double(), atol=1e-6)
    assert torch.equal(match_colors(frames, ref, 0.0), frames)


def test_weights_cli_lists_sets_and_presence(tmp_path, capsys):
    from infra.cli.main import main

    assert main(["weights", "list", "talking-head", "--dir", str(tmp_path), "--json"]) == 1
    listed = json.loads(capsys.readouterr().out)
    repos = {w["repo"]: w for w in listed}
    assert repos["MeiGen-AI/InfiniteTalk"]["revision"] == "d59847ebdacf19245bfca3fb23311c0cada8378a"
    assert repos["TencentGameMate/chinese-wav2vec2-base"]["license"] == "MIT"
    assert not any(w["present"] for w in listed)
