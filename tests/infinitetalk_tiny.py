"""Tiny random-weight versions of every talking-head component, in the published file layouts.

- Wan2.1-I2V-14B-480P/: `config.json` (the reference's WanModel keys, plus the tiny widths the
  real file leaves at their defaults) and the transformer as sharded safetensors with an index,
  every key in the reference's naming (from tests/data/infinitetalk_keys.json);
- InfiniteTalk/single/ and multi/infinitetalk.safetensors: the adapters' keys, reference naming;
- Wan2.1-I2V-14B-480P-Diffusers/: vae (AutoencoderKLWan), text_encoder (UMT5EncoderModel),
  tokenizer (a Unigram T5 tokenizer built in code), image_encoder (CLIPVisionModel),
  image_processor/preprocessor_config.json;
- chinese-wav2vec2-base/: Wav2Vec2Model + Wav2Vec2FeatureExtractor;
- WanVideo_comfy/...lightx2v...safetensors: the fast profile's default LoRA, in the reference's
  LoRA naming.

Everything is saved by the libraries' own writers and read back by the engine's loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests.test_infinitetalk_keymap import TINY, reference_keys

TEXT_VOCAB = ["<pad>", "</s>", "<unk>", "▁"] + [
    f"▁{w}" for w in ["a", "person", "is", "talking", "to", "the", "camera"]
]
TEXT_VOCAB += list("abcdefghijklmnopqrstuvwxyz,.")


def _random(shape: tuple[int, ...], key: str, gen: torch.Generator) -> torch.Tensor:
    if key.endswith(("norm_q.weight", "norm_k.weight", "norm_k_img.weight")) or (
        "norm" in key and key.endswith(".weight") and len(shape) == 1
    ):
        return torch.ones(shape)
    if key.endswith("modulation"):
        return torch.randn(shape, generator=gen) / shape[-1] ** 0.5
    if key.endswith(".bias"):
        return torch.zeros(shape)
    fan_in = shape[1] if len(shape) > 1 else shape[0]
    for d in shape[2:]:
        fan_in *= d
    return torch.randn(shape, generator=gen) / fan_in**0.5


def build(root: Path, seed: int = 0) -> Path:
    """Write the whole tiny weight tree under `root` and return it."""
    gen = torch.Generator().manual_seed(seed)
    _transformer(root, gen)
    _components(root)
    _wav2vec(root)
    _lora(root, gen)
    return root


def _transformer(root: Path, gen: torch.Generator) -> None:
    wan_dir = root / "Wan2.1-I2V-14B-480P"
    wan_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "_class_name": "WanModel",
        "model_type": "i2v",
        "dim": TINY["dim"],
        "ffn_dim": TINY["ffn_dim"],
        "freq_dim": TINY["freq_dim"],
        "in_dim": TINY["in_dim"],
        "num_heads": TINY["num_heads"],
        "num_layers": TINY["num_layers"],
        "out_dim": TINY["out_dim"],
        "text_len": 512,
        "eps": 1e-06,
        # not in the real file (the reference's defaults apply there)
        "text_dim": TINY["text_dim"],
        "image_dim": TINY["image_dim"],
        "audio_layers": TINY["audio_layers"],
        "audio_dim": TINY["audio_dim"],
        "audio_hidden_dim": TINY["audio_hidden"],
        "audio_tokens": TINY["audio_tokens"],
        "audio_context_dim": TINY["audio_out"],
    }
    (wan_dir / "config.json").write_text(json.dumps(config, indent=2))
    wan = {k: _random(s, k, gen) for k, s in reference_keys("wan", TINY).items()}
    keys = sorted(wan)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f"diffusion_pytorch_model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: wan[k].contiguous() for k in part}, str(wan_dir / name))
        weight_map.update(dict.fromkeys(part, name))
    (wan_dir / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2)
    )
    for people in ("single", "multi"):  # the same layout (see test_infinitetalk_speakers)
        talk = {k: _random(s, k, gen) for k, s in reference_keys("infinitetalk", TINY).items()}
        (root / "InfiniteTalk" / people).mkdir(parents=True, exist_ok=True)
        save_file(talk, str(root / "InfiniteTalk" / people / "infinitetalk.safetensors"))


def _tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import T5TokenizerFast

    vocab = [(piece, -float(i) / 10) for i, piece in enumerate(TEXT_VOCAB)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    from tokenizers.processors import TemplateProcessing

    tok.post_processor = TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return T5TokenizerFast(
        tokenizer_object=tok, eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0
    )


def _components(root: Path) -> None:
    from diffusers import AutoencoderKLWan
    from transformers import CLIPVisionConfig, CLIPVisionModel, UMT5Config, UMT5EncoderModel

    base = root / "Wan2.1-I2V-14B-480P-Diffusers"
    torch.manual_seed(1)
    z = (TINY["in_dim"] - 4) // 2
    AutoencoderKLWan(
        base_dim=8,
        z_dim=z,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        latents_mean=[0.0] * z,
        latents_std=[1.0] * z,
    ).save_pretrained(str(base / "vae"))
    UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(TEXT_VOCAB),
            d_model=TINY["text_dim"],
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
        )
    ).save_pretrained(str(base / "text_encoder"))
    _tokenizer().save_pretrained(str(base / "tokenizer"))
    CLIPVisionModel(
        CLIPVisionConfig(
            hidden_size=TINY["image_dim"],
            intermediate_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=16,
        )
    ).save_pretrained(str(base / "image_encoder"))
    (base / "image_processor").mkdir(parents=True, exist_ok=True)
    (base / "image_processor" / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "CLIPImageProcessor",
                "image_mean": [0.48145466, 0.4578275, 0.40821073],
                "image_std": [0.26862954, 0.26130258, 0.27577711],
                "crop_size": {"height": 32, "width": 32},
            }
        )
    )
    (base / "model_index.json").write_text(json.dumps({"_class_name": "WanImageToVideoPipeline"}))


def _wav2vec(root: Path) -> None:
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(2)
    path = root / "chinese-wav2vec2-base"
    config = Wav2Vec2Config(
        hidden_size=TINY["audio_dim"],
        num_hidden_layers=TINY["audio_layers"],
        num_attention_heads=2,
        intermediate_size=16,
        conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
        feat_extract_norm="group",
        do_stable_layer_norm=False,
    )
    Wav2Vec2Model(config).save_pretrained(str(path))
    Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True
    ).save_pretrained(str(path))


LIGHTX2V_LORA = "WanVideo_comfy/Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors"


def lora_tensors(gen: torch.Generator, rank: int = 2) -> dict[str, torch.Tensor]:
    d = TINY["dim"]
    out = {}
    for i in range(TINY["num_layers"]):
        for module in ("self_attn.q", "cross_attn.o", "ffn.0"):
            rows = TINY["ffn_dim"] if module == "ffn.0" else d
            prefix = f"diffusion_model.blocks.{i}.{module}"
            out[f"{prefix}.lora_down.weight"] = torch.randn(rank, d, generator=gen) * 0.1
            out[f"{prefix}.lora_up.weight"] = torch.randn(rows, rank, generator=gen) * 0.1
            out[f"{prefix}.alpha"] = torch.tensor(float(rank))
    out["diffusion_model.head.head.diff_b"] = torch.randn(4 * TINY["out_dim"], generator=gen)
    return out


def _lora(root: Path, gen: torch.Generator) -> None:
    path = root / LIGHTX2V_LORA
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(lora_tensors(gen), str(path))
