"""Tiny random-weight LongCat-Video-Avatar components, in the published folder layouts.

- LongCat-Video/: tokenizer (a Unigram T5 tokenizer built in code), text_encoder
  (UMT5EncoderModel), vae (AutoencoderKLWan), scheduler (FlowMatchEulerDiscreteScheduler);
- LongCat-Video-Avatar-1.5/: base_model (config.json in the reference's keys, sharded
  safetensors with an index, every key from tests/data/longcat_avatar_keys.json),
  base_model_int8 (the same weights quantized as the reference's `quantize_model` writes them:
  `quantized_model-*.safetensors`),
  lora/dmd_lora.safetensors (the reference's LoRA naming, one target split in three chunks),
  whisper-large-v3 (WhisperModel + WhisperFeatureExtractor, 128 mel bins), scheduler;
- LongCat-Video-Avatar/: avatar_single (the v1.0 DiT, wav2vec2-sized audio adapter) and
  chinese-wav2vec2-base.

Everything is written by the libraries' own writers and read back by the engine's loader.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from tests import infinitetalk_tiny
from tests.test_longcat_keymap import TINY_CONFIG, reference_keys

V10_CONFIG = {**TINY_CONFIG, "audio_block": 3, "audio_channel": 8, "text_tokens_zero_pad": False}
LORA = "lora___lorahyphen___blocks___lorahyphen___{i}___lorahyphen___{module}"


def build(root: Path, seed: int = 0) -> Path:
    """Write the whole tiny weight tree under `root` and return it."""
    gen = torch.Generator().manual_seed(seed)
    _base(root / "LongCat-Video")
    v15 = root / "LongCat-Video-Avatar-1.5"
    _dit(v15 / "base_model", TINY_CONFIG, gen)
    _int8(v15 / "base_model", v15 / "base_model_int8")
    _lora(v15 / "lora", gen)
    _whisper(v15 / "whisper-large-v3")
    _scheduler(v15 / "scheduler")
    v10 = root / "LongCat-Video-Avatar"
    _dit(v10 / "avatar_single", V10_CONFIG, gen)
    infinitetalk_tiny._wav2vec(v10)  # chinese-wav2vec2-base, 3 layers of 8
    return root


def _scheduler(path: Path) -> None:
    from diffusers import FlowMatchEulerDiscreteScheduler

    FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=1.0).save_pretrained(str(path))


def _base(base: Path) -> None:
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(1)
    z = TINY_CONFIG["in_channels"]
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
            vocab_size=len(infinitetalk_tiny.TEXT_VOCAB),
            d_model=TINY_CONFIG["caption_channels"],
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
        )
    ).save_pretrained(str(base / "text_encoder"))
    infinitetalk_tiny._tokenizer().save_pretrained(str(base / "tokenizer"))
    _scheduler(base / "scheduler")


def _dit(folder: Path, config: dict, gen: torch.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    published = {
        "_class_name": "LongCatVideoAvatarTransformer3DModel",
        **config,
        "enable_flashattn2": True,
        "enable_flashattn3": False,
        "enable_xformers": False,
        "enable_bsa": False,
        "cp_split_hw": [1, 1],
    }
    (folder / "config.json").write_text(json.dumps(published, indent=2))
    tensors = {
        k: infinitetalk_tiny._random(s, k, gen).contiguous()
        for k, s in reference_keys(config).items()
    }
    keys = sorted(tensors)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f"diffusion_pytorch_model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: tensors[k] for k in part}, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2)
    )


def _int8(source: Path, folder: Path) -> None:
    from gpu.longcat.int8 import quantize
    from gpu.longcat.pipeline import load_transformer

    state = quantize(load_transformer(source, torch.float32))
    keys = sorted(state)
    shards = [keys[: len(keys) // 2], keys[len(keys) // 2 :]]
    folder.mkdir(parents=True, exist_ok=True)
    weight_map = {}
    for i, part in enumerate(shards, 1):
        name = f"quantized_model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file({k: state[k].contiguous() for k in part}, str(folder / name))
        weight_map.update(dict.fromkeys(part, name))
    (folder / "quantized_model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    (folder / "config.json").write_text((source / "config.json").read_text())
    (folder / "quantization_config.json").write_text(
        json.dumps({"quantization_method": "int8_per_channel_symmetric"})
    )


def lora_tensors(gen: torch.Generator, rank: int = 2) -> dict[str, torch.Tensor]:
    """qkv of block 0 split in three output chunks; ffn.w1 of block 1 whole."""
    h = TINY_CONFIG["hidden_size"]
    ff = 256  # the SwiGLU hidden width at this size (rounded up to 256)
    qkv = LORA.format(i=0, module="attn___lorahyphen___qkv")
    w1 = LORA.format(i=1, module="ffn___lorahyphen___w1")
    out = {
        f"{qkv}.lora_down.weight": torch.randn(3 * rank, h, generator=gen) * 0.1,
        f"{qkv}.alpha_scale": torch.tensor(0.5),
        f"{w1}.lora_down.weight": torch.randn(rank, h, generator=gen) * 0.1,
        f"{w1}.lora_up.weight": torch.randn(ff, rank, generator=gen) * 0.1,
        f"{w1}.alpha_scale": torch.tensor(0.5),
    }
    for k in range(3):
        out[f"{qkv}.lora_up.blocks.{k}.weight"] = torch.randn(h, rank, generator=gen) * 0.1
    return out


def _lora(folder: Path, gen: torch.Generator) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    save_file(lora_tensors(gen), str(folder / "dmd_lora.safetensors"))


def _whisper(path: Path) -> None:
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(3)
    WhisperModel(
        WhisperConfig(
            vocab_size=64,
            num_mel_bins=128,
            d_model=TINY_CONFIG["audio_channel"],
            encoder_layers=4,
            encoder_attention_heads=2,
            encoder_ffn_dim=16,
            decoder_layers=1,
            decoder_attention_heads=2,
            decoder_ffn_dim=16,
            max_source_positions=1500,
            max_target_positions=32,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
            begin_suppress_tokens=None,
            suppress_tokens=None,
        )
    ).save_pretrained(str(path))
    WhisperFeatureExtractor(feature_size=128).save_pretrained(str(path))
