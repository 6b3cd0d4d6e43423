"""Two speakers (issue 14, point 4) in the InfiniteTalk engine, tiny random weights.

- The multi-person weights (`multi/infinitetalk.safetensors`) load with 0 missing and 0
  unexpected keys, tiny and at full size on the meta device. Their key list is the single
  file's: the reference loads either file into the same `WanModel` with a strict
  `load_state_dict` (MeiGen-AI/InfiniteTalk `wan/multitalk.py`).
- A portrait and two voices dropped on moto render through the lifecycle; what the transformer
  receives is checked: both voices' windows, placed in turns or together, the portrait's masks
  (left/right halves by default, prompt.json's boxes otherwise), one silent voice in the
  no-audio guidance passes, and the multi-person adapter's weights.
- The routing itself: labels from mask scores, the 1D RoPE, the portrait scores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk import keymap, speakers  # noqa: E402
from gpu.infinitetalk.audio import SAMPLE_RATE, frame_windows, loudness_normalize  # noqa: E402
from gpu.infinitetalk.engine import InfiniteTalkEngine, scaled_profiles  # noqa: E402
from gpu.infinitetalk.model import InfiniteTalkTransformer  # noqa: E402
from gpu.infinitetalk.pipeline import load_transformer  # noqa: E402
from gpu.media import load_audio  # noqa: E402
from infra.cli import samples  # noqa: E402
from infra.local_dispatch import InlineDispatcher  # noqa: E402
from infra.wiring import build_runtime  # noqa: E402
from tests import infinitetalk_tiny  # noqa: E402
from tests.helpers import Outcomes, wav  # noqa: E402
from tests.test_infinitetalk_keymap import FACTS, TINY, model_config, reference_keys  # noqa: E402
from triggers.poller import tick  # noqa: E402

# 64x48 buckets (a 4x3 token grid: room for a left and a right speaker), one step, short clips.
PROFILES = scaled_profiles(0.1, steps=1, clip_frames=17, motion_frames=5, teacache=None)


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return infinitetalk_tiny.build(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="module")
def engine(tiny_weights) -> InfiniteTalkEngine:
    eng = InfiniteTalkEngine(weights_dir=tiny_weights, profiles=PROFILES, device="cpu")
    eng.load()
    return eng


def multi_keys(symbols: dict[str, int]) -> dict[str, tuple[int, ...]]:
    """The multi-person file's published keys: the same layout as the single-person file's."""
    return reference_keys("infinitetalk", symbols)


def test_multi_person_weights_load_with_no_missing_or_unexpected_keys(tiny_weights):
    multi = tiny_weights / "InfiniteTalk/multi/infinitetalk.safetensors"
    model = load_transformer(tiny_weights / "Wan2.1-I2V-14B-480P", multi, torch.float32)
    from safetensors.torch import load_file

    published = load_file(str(multi))
    assert set(published) == set(multi_keys(TINY))
    ours = model.state_dict()
    for key, value in published.items():
        assert torch.equal(ours[keymap.map_key(key)], value)


def test_multi_person_layout_matches_the_full_size_model_on_meta():
    s = FACTS["symbols_14b"]
    with torch.device("meta"):
        model = InfiniteTalkTransformer(**model_config(s))
    published = {**reference_keys("wan", s), **multi_keys(s)}
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped = {keymap.map_key(k): shape for k, shape in published.items()}
    assert sorted(set(ours) - set(mapped)) == []  # missing
    assert sorted(set(mapped) - set(ours)) == []  # unexpected
    assert {k: v for k, v in mapped.items() if ours[k] != v} == {}  # wrong shapes
    assert len(multi_keys(s)) == FACTS["counts_14b"]["infinitetalk"]


class Spy:
    """Records what the transformer receives on each pass."""

    def __init__(self, model):
        self.model, self.calls, self.original = model, [], model.forward

    def __enter__(self):
        def forward(*args, **kwargs):
            self.calls.append(
                {
                    "audio": kwargs["audio_windows"].detach().clone(),
                    "masks": kwargs.get("speaker_masks"),
                    "proj1": self.model.audio_proj.proj1.weight.detach().clone(),
                }
            )
            return self.original(*args, **kwargs)

        self.model.forward = forward
        return self

    def __exit__(self, *exc):
        del self.model.forward


def render_pair(storage, make_settings, engine, folder: str, first: bytes, second: bytes, prompt):
    storage.put(f"{folder}/duo.png", samples.portrait_png(120, 80))
    storage.put(f"{folder}/duo.speaker1.wav", first)
    storage.put(f"{folder}/duo.speaker2.wav", second)
    if prompt:
        storage.put(f"{folder}/duo.prompt.json", json.dumps(prompt).encode())
    rt = build_runtime(make_settings(storage, engine_talking_head="infinitetalk"), storage=storage)
    rt.engine_loader = lambda name: engine
    results = Outcomes()
    with Spy(engine.components.transformer) as spy:
        tick(rt, InlineDispatcher(rt, results))
    status = json.loads(storage.get(f"{folder}/.dropreel/duo/status.json"))
    assert list(results.values()) == ["done"], status.get("error")
    return spy.calls, status


def expected_windows(engine, tracks: list[np.ndarray], frames: int) -> torch.Tensor:
    """What the model should hear: each placed, levelled track through wav2vec2, windowed."""
    return torch.stack([frame_windows(engine.components.audio.embed(t), 0, frames) for t in tracks])


@pytest.mark.parametrize("speaking", ["turns", "together"])
def test_both_voices_and_both_masks_reach_the_model(
    s3_storage, make_settings, engine, tmp_path, speaking
):
    first, second = wav(0.6, seed=1), wav(0.8, seed=2)
    calls, status = render_pair(
        s3_storage, make_settings, engine, speaking, first, second, {"speaking": speaking}
    )
    settings = status["settings"]
    assert settings["model"].startswith("InfiniteTalk (multi)")
    assert settings["speaking"] == speaking
    seconds = 1.4 if speaking == "turns" else 0.8
    assert settings["frames"] == (int(seconds * 25) - 1) // 4 * 4 + 1

    voiced = [c for c in calls if c["audio"].shape[0] == 2]
    silent = [c for c in calls if c["audio"].shape[0] == 1]
    assert voiced and silent  # text 5 / audio 4: cond and drop-text hear both, uncond neither
    assert all(not c["audio"].any() for c in silent)  # one silent voice, as the reference

    paths = []
    for i, data in enumerate((first, second)):
        path = tmp_path / f"{speaking}{i}.wav"
        path.write_bytes(data)
        paths.append(loudness_normalize(load_audio(path, SAMPLE_RATE)))
    one, two = paths
    if speaking == "turns":  # speaker 1 speaks, then speaker 2
        tracks = [np.concatenate([one, 0 * two]), np.concatenate([0 * one, two])]
    else:  # both from the start, the shorter followed by silence
        tracks = [np.pad(one, (0, len(two) - len(one))), two]
    clip = voiced[0]["audio"].shape[1]
    assert torch.allclose(voiced[0]["audio"], expected_windows(engine, tracks, clip), atol=1e-5)

    masks = voiced[0]["masks"]  # [3, 6, 8] on the latent grid of the 64x48 bucket
    assert masks.shape == (3, 6, 8)
    left, right = masks[0].nonzero()[:, 1], masks[1].nonzero()[:, 1]
    assert len(left) and len(right)
    assert left.max() < 4 <= right.min()  # speaker 1 on the left, speaker 2 on the right
    assert torch.equal(masks[2], 1 - masks[0] - masks[1])  # the rest is background

    from safetensors.torch import load_file

    multi = load_file(str(engine.weights_dir / "InfiniteTalk/multi/infinitetalk.safetensors"))
    assert torch.equal(voiced[0]["proj1"], multi["audio_proj.proj1.weight"])


def test_boxes_from_prompt_json_become_the_masks(s3_storage, make_settings, engine):
    boxes = [[66, 0, 120, 80], [0, 0, 54, 80]]  # speaker 1 on the right
    calls, status = render_pair(
        s3_storage,
        make_settings,
        engine,
        "boxes",
        wav(0.6, seed=3),
        wav(0.6, seed=4),
        {"speakers": [{"box": b} for b in boxes]},
    )
    assert status["settings"]["speakers"] == boxes
    masks = next(c["masks"] for c in calls if c["audio"].shape[0] == 2)
    assert masks[0].nonzero()[:, 1].min() >= 4 and masks[1].nonzero()[:, 1].max() < 4


def test_one_voice_after_two_runs_the_single_person_weights(engine, tmp_path):
    from safetensors.torch import load_file

    from tests.helpers import decoded_request

    png, voice = tmp_path / "f.png", tmp_path / "v.wav"
    png.write_bytes(samples.portrait_png(64, 64))
    voice.write_bytes(wav(0.6))
    engine.components.use_adapter("multi")
    plan = engine.check_inputs(decoded_request("talking_head", image=png, audio=voice))
    assert plan.describe()["model"].startswith("InfiniteTalk (single)")
    with Spy(engine.components.transformer) as spy:
        frames = list(engine.render(plan))
    single = load_file(str(engine.weights_dir / "InfiniteTalk/single/infinitetalk.safetensors"))
    assert len(frames) == plan.num_frames
    assert torch.equal(spy.calls[0]["proj1"], single["audio_proj.proj1.weight"])
    assert spy.calls[0]["masks"] is None and spy.calls[0]["audio"].shape[0] == 1


def test_each_token_takes_the_label_of_the_mask_it_attends_to_most():
    scores = torch.tensor(
        [
            [0.9, 0.5, 0.1, 0.2],  # speaker 1
            [0.1, 0.2, 0.8, 0.3],  # speaker 2
            [0.0, 0.3, 0.1, 0.7],  # background
        ]
    )
    got = speakers.labels(scores)
    assert 0 <= got[0] <= 4 and 0 <= got[1] <= 4  # speaker 1's range, scaled by its scores
    assert got[0] == 4.0 and got[2] == 24.0  # each speaker's strongest token at the range's top
    assert got[3] == 12.0  # background
    keys = speakers.voice_labels(2, "cpu")
    assert keys.tolist() == [2.0, 2.0, 22.0, 22.0]  # each voice at its range's centre


def test_rope_rotates_pairs_by_position_times_frequency():
    x = torch.randn(3, 8)
    positions = torch.tensor([0.0, 2.0, 22.0])
    got = speakers.rotate(x, positions)
    freqs = 1.0 / 10000 ** (torch.arange(0, 8, 2).float() / 8)
    z = torch.view_as_complex(x.view(3, 4, 2).contiguous())
    want = torch.view_as_real(z * torch.polar(torch.ones(3, 4), positions[:, None] * freqs))
    assert torch.allclose(got, want.flatten(1), atol=1e-5)
    assert torch.equal(got[0], x[0])  # position 0: unchanged


def test_portrait_scores_follow_where_queries_look():
    keys = torch.eye(4)[None, :, None, :] * 20  # 4 portrait tokens, one head
    queries = keys[:, [0, 3]]  # token 0 looks at portrait token 0, token 1 at token 3
    masks = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]).float()
    scores = speakers.portrait_scores(queries, keys, masks)
    assert scores.argmax(dim=0).tolist() == [0, 2]  # speaker 1, background
