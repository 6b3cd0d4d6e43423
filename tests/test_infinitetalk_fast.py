"""The fastest single-GPU path as `fast` (issue 14, point 5), checked on CPU.

The fast profile is the lightx2v 4-step LoRA, fp8 weight storage and the fastest attention that
loads, TeaCache off; balanced and quality stay the reference's recipe. On CPU: the LoRA is fused
before the weights are stored in fp8 and the render runs from fp8 storage; the LoRA's target
modules exist at full size (meta device); an attention kernel that cannot load is named in the
note status.json shows, with what ran instead. What only a GPU can confirm (the kernels
themselves, the seconds per second of video) is bench/gpu_engines_talking.py's job.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gpu.infinitetalk import accel, keymap  # noqa: E402
from gpu.infinitetalk.engine import InfiniteTalkEngine, scaled_profiles  # noqa: E402
from gpu.infinitetalk.model import InfiniteTalkTransformer  # noqa: E402
from gpu.infinitetalk.profiles import PROFILES  # noqa: E402
from gpu.infinitetalk.sampler import Guidance  # noqa: E402
from infra.cli import samples  # noqa: E402
from tests import infinitetalk_tiny  # noqa: E402
from tests.helpers import decoded_request, wav  # noqa: E402
from tests.test_infinitetalk_keymap import FACTS, TINY, model_config  # noqa: E402


def test_fast_is_lightx2v_four_steps_fp8_and_fast_attention_without_teacache():
    fast = PROFILES["fast"]
    assert (fast.lora, fast.steps, fast.shift) == ("lightx2v", 4, 2.0)
    assert (fast.text_guidance, fast.audio_guidance) == (1.0, 2.0)
    assert len(Guidance(fast.text_guidance, fast.audio_guidance).branches) == 2  # CFG-distilled
    assert fast.teacache is None and fast.fp8
    assert fast.attention[0] == "sage_hub"


def test_balanced_and_quality_stay_the_reference_recipe():
    for name, shift in (("balanced", 7.0), ("quality", 11.0)):
        p = PROFILES[name]
        assert (p.steps, p.text_guidance, p.audio_guidance, p.shift) == (40, 5.0, 4.0, shift)
        assert p.lora is None and not p.fp8 and p.attention == ()


def test_no_distilled_profile_uses_teacache():
    assert all(p.teacache is None for p in PROFILES.values() if p.lora)


@pytest.fixture(scope="module")
def fast_engine(tmp_path_factory) -> InfiniteTalkEngine:
    root = infinitetalk_tiny.build(tmp_path_factory.mktemp("weights"))
    profiles = scaled_profiles(0.025, clip_frames=17, motion_frames=5, teacache=None)
    engine = InfiniteTalkEngine(weights_dir=root, profile="fast", profiles=profiles, device="cpu")
    engine.load()
    return engine


def test_fast_worker_fuses_lightx2v_then_stores_fp8_on_cpu(fast_engine, tmp_path):
    from gpu.infinitetalk.lora import fuse_lora
    from gpu.infinitetalk.pipeline import load_transformer

    root = fast_engine.weights_dir
    model = fast_engine.components.transformer
    stored = model.blocks[0].attn1.to_q.weight
    assert stored.dtype == torch.float8_e4m3fn and fast_engine.fused_lora == "lightx2v"
    plain = load_transformer(
        root / "Wan2.1-I2V-14B-480P",
        root / "InfiniteTalk/single/infinitetalk.safetensors",
        torch.float32,
    )
    fuse_lora(plain, root / infinitetalk_tiny.LIGHTX2V_LORA)
    fused = plain.blocks[0].attn1.to_q.weight
    assert torch.equal(stored.float(), fused.to(torch.float8_e4m3fn).float())  # fused, then cast

    png, voice = tmp_path / "f.png", tmp_path / "v.wav"
    png.write_bytes(samples.portrait_png(64, 64))
    voice.write_bytes(wav(0.6))
    plan = fast_engine.check_inputs(decoded_request("talking_head", image=png, audio=voice))
    settings = plan.describe()
    assert (settings["profile"], settings["lora"], settings["steps"]) == ("fast", "lightx2v", 4)
    assert settings["teacache"] is None
    assert any(note.startswith("fp8 weight storage") for note in settings["speed"])
    assert "attention: PyTorch SDPA (no CUDA)" in settings["speed"]
    frames = list(fast_engine.render(plan))
    assert len(frames) == plan.num_frames and all(f.std() > 0 for f in frames)


def test_an_fp8_worker_refuses_a_profile_it_cannot_serve_in_words(fast_engine, tmp_path):
    from gpu.errors import InputError

    png, voice = tmp_path / "f.png", tmp_path / "v.wav"
    png.write_bytes(samples.portrait_png(64, 64))
    voice.write_bytes(wav(0.6))
    request = decoded_request("talking_head", image=png, audio=voice, profile="balanced")
    plan = fast_engine.check_inputs(request)
    with pytest.raises(InputError, match="stores its weights in fp8"):
        list(fast_engine.render(plan))


def test_the_lora_targets_exist_at_full_size_on_meta():
    s = FACTS["symbols_14b"]
    with torch.device("meta"):
        model = InfiniteTalkTransformer(**model_config(s))
    params = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    dim, ffn = s["dim"], s["ffn_dim"]
    targets = {
        **{f"self_attn.{m}": (dim, dim) for m in "qkvo"},
        **{f"cross_attn.{m}": (dim, dim) for m in ("q", "k", "v", "o", "k_img", "v_img")},
        "ffn.0": (ffn, dim),
        "ffn.2": (dim, ffn),
    }
    for block in range(s["num_layers"]):
        for module, shape in targets.items():
            name = keymap.map_module(f"blocks.{block}.{module}") + ".weight"
            assert params[name] == shape, name


def test_attention_that_cannot_load_is_named_with_what_ran():
    model = InfiniteTalkTransformer(**model_config(TINY))
    note = accel.attention_backend(model, torch.device("cuda"), ("sage_hub", "sage"))
    assert note.startswith("attention: PyTorch SDPA; sage_hub unavailable (")
    assert "; sage unavailable (" in note
    assert accel.attention_backend(model, torch.device("cpu"), ("sage_hub",)) == (
        "attention: PyTorch SDPA (no CUDA)"
    )


def test_fp8_follows_the_default_profile_unless_the_operator_says(tmp_path):
    def fp8(**kwargs) -> bool:
        return InfiniteTalkEngine(weights_dir=tmp_path, device="cpu", **kwargs).fp8

    assert fp8(profile="fast") is True
    assert fp8(profile="balanced") is False
    assert fp8(profile="fast", fp8=False) is False  # DROPREEL_TALKING_HEAD_FP8=false
    assert fp8(profile="balanced", fp8=True) is True
