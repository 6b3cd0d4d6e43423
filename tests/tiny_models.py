"""Tiny random-weight checkpoints of the real diffusers/transformers classes, built in code.

Each builder makes the published pipeline's components at toy sizes, two transformer blocks
each so caches and per-block hooks run, (same classes, same VAE
compression as the real checkpoint, so the frame rule and size grid hold), tokenizer included
(a Unigram T5 tokenizer built from a word list, no hub), and `save_pretrained`s the pipeline into
a folder laid out like the Hugging Face cache: `models--org--name/snapshots/<commit>/` with
`refs/<revision>` pointing at it. The engines then resolve the real repo id + revision through
`gpu.weights.local_snapshot`, the path the real weights take.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

from gpu.diffusers_models import MODELS
from gpu.weights import WeightSource

TEXT_DIM = 32
WORDS = [
    "a",
    "the",
    "of",
    "and",
    "in",
    "on",
    "with",
    "to",
    "at",
    "red",
    "blue",
    "green",
    "cat",
    "dog",
    "fox",
    "sky",
    "sea",
    "sun",
    "moon",
    "tree",
    "city",
    "night",
    "day",
    "walks",
    "runs",
    "flies",
    "over",
    "under",
    "camera",
    "pans",
    "slowly",
    "video",
    "light",
    "dark",
    "water",
    "mountain",
]


def tiny_t5_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    vocab += [(f"\u2581{w}", -float(i + 1)) for i, w in enumerate(WORDS)]
    vocab += [(c, -50.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-"]
    vocab += [("\u2581", -60.0)]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def tiny_t5_encoder(vocab_size: int, umt5: bool = False):
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    args = dict(
        vocab_size=vocab_size,
        d_model=TEXT_DIM,
        d_kv=8,
        d_ff=37,
        num_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
    )
    if umt5:
        return UMT5EncoderModel(UMT5Config(**args))
    return T5EncoderModel(T5Config(**args))


def build_ltx():
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    tokenizer = tiny_t5_tokenizer()
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        num_layers=2,
        caption_channels=TEXT_DIM,
    )
    # Same compression as the published VAE: patch 4 x three 2x scalings = 32 in space, 8 in time.
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=True,
        patch_size=4,
        patch_size_t=1,
    )
    return LTXConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=tiny_t5_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        transformer=transformer,
    )


def build_wan():
    from diffusers import (
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        WanPipeline,
        WanTransformer3DModel,
    )

    tokenizer = tiny_t5_tokenizer()
    # Wan2.2's VAE: 48 latent channels, patch 2, 16x in space, 4x in time (residual design).
    z_dim = 48
    vae = AutoencoderKLWan(
        base_dim=8,
        z_dim=z_dim,
        dim_mult=[1, 1, 1, 1],
        num_res_blocks=1,
        temperal_downsample=[False, True, True],
        is_residual=True,
        in_channels=12,
        out_channels=12,
        patch_size=2,
        scale_factor_spatial=16,
        scale_factor_temporal=4,
        latents_mean=[0.0] * z_dim,
        latents_std=[1.0] * z_dim,
    )
    transformer = WanTransformer3DModel(
        patch_size=(1, 2, 2),
        num_attention_heads=2,
        attention_head_dim=8,
        in_channels=z_dim,
        out_channels=z_dim,
        text_dim=TEXT_DIM,
        freq_dim=16,
        ffn_dim=16,
        num_layers=2,
        rope_max_seq_len=64,
    )
    return WanPipeline(
        tokenizer=tokenizer,
        text_encoder=tiny_t5_encoder(len(tokenizer), umt5=True),
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=5.0),
        transformer=transformer,
        expand_timesteps=True,
    )


def build_mochi():
    from diffusers import (
        AutoencoderKLMochi,
        FlowMatchEulerDiscreteScheduler,
        MochiPipeline,
        MochiTransformer3DModel,
    )

    tokenizer = tiny_t5_tokenizer()
    transformer = MochiTransformer3DModel(
        patch_size=2,
        num_attention_heads=2,
        attention_head_dim=8,
        num_layers=2,
        pooled_projection_dim=16,
        in_channels=12,
        text_embed_dim=TEXT_DIM,
        time_embed_dim=4,
        max_sequence_length=16,
    )
    vae = AutoencoderKLMochi(
        latent_channels=12,
        out_channels=3,
        encoder_block_out_channels=(32, 32, 32, 32),
        decoder_block_out_channels=(32, 32, 32, 32),
        add_attention_block=(False, False, False, False, False),
        layers_per_block=(1, 1, 1, 1, 1),
    )
    return MochiPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=tiny_t5_encoder(len(tokenizer)),
        tokenizer=tokenizer,
        transformer=transformer,
    )


def fake_commit(repo: WeightSource) -> str:
    return hashlib.sha1(f"tiny:{repo.repo_id}".encode()).hexdigest()


def save_in_hf_cache(pipe, repo: WeightSource, cache_dir: Path, variant: str | None = None) -> Path:
    """Save `pipe` where huggingface_hub would have put `repo` at its revision.

    With `variant` the diffusers models' weights are saved twice, plain and with the variant in
    their names (as mochi-1-preview holds fp32 and bf16 copies); the text encoder has one file.
    """
    root = cache_dir / ("models--" + repo.repo_id.replace("/", "--"))
    commit = repo.revision if repo.revision and len(repo.revision) == 40 else fake_commit(repo)
    snapshot = root / "snapshots" / commit
    pipe.save_pretrained(snapshot)
    for weights in snapshot.glob("*/diffusion_pytorch_model.safetensors"):
        if variant:  # both precisions on disk, as the real repo holds them
            shutil.copy(
                weights, weights.with_name(f"diffusion_pytorch_model.{variant}.safetensors")
            )
    if commit != repo.revision:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / repo.ref).write_text(commit)
    return snapshot


def populate_cache(cache_dir: Path, engines: list[str] | None = None, seed: int = 0) -> Path:
    """Build every tiny engine once and save it under each repo id that engine names; a
    single-file checkpoint is written in the makers' layout, its config repo beside it."""
    import torch

    for name in engines or list(BUILDERS):
        torch.manual_seed(seed)
        build, kinds = BUILDERS[name]
        pipe = build()
        separate = {"image_to_video": build(image_to_video=True)} if name in SEPARATE_I2V else {}
        for variant in MODELS[name].variants.values():
            if set(variant.pipelines) & set(kinds):
                kind = next(iter(variant.pipelines))
                made = separate.get(kind, pipe)
                if variant.name in VARIANT_BUILDS:
                    made = build(**VARIANT_BUILDS[variant.name])
                if variant.multiscale:
                    upsampler = variant.multiscale.upsampler
                    save_ltx_upsampler(
                        hf_cache_snapshot(upsampler, cache_dir) / upsampler.patterns[0]
                    )
                if variant.single_file and variant.config:
                    save_in_hf_cache(made, variant.config, cache_dir)
                    snapshot = hf_cache_snapshot(variant.repo, cache_dir)
                    save_ltx_single_file(made, snapshot / variant.single_file)
                    continue
                save_in_hf_cache(made, variant.repo, cache_dir, variant.load.get("variant"))
    return cache_dir


def hf_cache_snapshot(repo: WeightSource, cache_dir: Path) -> Path:
    """The (created) snapshot folder of `repo` at its revision in a Hugging Face cache."""
    root = cache_dir / ("models--" + repo.repo_id.replace("/", "--"))
    commit = repo.revision if repo.revision and len(repo.revision) == 40 else fake_commit(repo)
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True, exist_ok=True)
    if commit != repo.revision:
        (root / "refs").mkdir(parents=True, exist_ok=True)
        (root / "refs" / repo.ref).write_text(commit)
    return snapshot


def tiny_ltx_upsampler():
    """Lightricks' latent upscaler at toy size (8 latent channels, as the tiny LTX VAE)."""
    from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

    return LTXLatentUpsamplerModel(in_channels=8, mid_channels=32, num_blocks_per_stage=1)


def save_ltx_upsampler(path: Path) -> None:
    """The tiny upscaler as Lightricks publish theirs: one safetensors file, diffusers' tensor
    names, the model config as JSON in the file's metadata (class `LatentUpsampler`)."""
    import json

    from safetensors.torch import save_file

    model = tiny_ltx_upsampler()
    config = {"_class_name": "LatentUpsampler", **dict(model.config)}
    config = {k: v for k, v in config.items() if not k.startswith("_") or k == "_class_name"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(tensors, str(path), metadata={"format": "pt", "config": json.dumps(config)})


LTX_TRANSFORMER_NAMES = {"proj_in": "patchify_proj", "time_embed": "adaln_single"}
LTX_TRANSFORMER_NAMES |= {"norm_q": "q_norm", "norm_k": "k_norm"}
"""diffusers' LTX transformer names -> Lightricks' (the reverse of diffusers' converter)."""


def save_ltx_single_file(pipe, path: Path) -> None:
    """The pipeline's transformer and VAE as one safetensors file in Lightricks' layout
    (`model.diffusion_model.*`, `vae.*`, the original block names), as
    `ltxv-2b-0.9.8-distilled.safetensors` holds them. Each name is found by running diffusers'
    own converter backwards: the original name is the candidate it converts to the diffusers
    name, so loading the file runs exactly the conversion the real file gets."""
    from diffusers.loaders.single_file_utils import (
        convert_ltx_transformer_checkpoint_to_diffusers,
        convert_ltx_vae_checkpoint_to_diffusers,
    )
    from safetensors.torch import save_file

    tensors = {}
    for name, tensor in pipe.transformer.state_dict().items():
        original = name
        for new, old in LTX_TRANSFORMER_NAMES.items():
            original = original.replace(new, old)
        original = "model.diffusion_model." + original
        assert set(convert_ltx_transformer_checkpoint_to_diffusers({original: 0})) == {name}
        tensors[original] = tensor.contiguous()
    vae = pipe.vae.state_dict()
    # Keys the converter reads to pick its renaming rules, present in every trial.
    deciding = {
        k: vae[d]
        for k, d in (
            ("vae.encoder.conv_out.conv.weight", "encoder.conv_out.conv.weight"),
            (
                "vae.decoder.last_time_embedder.timestep_embedder.linear_1.weight",
                "decoder.time_embedder.timestep_embedder.linear_1.weight",
            ),
        )
        if d in vae
    }
    for name, tensor in vae.items():
        original = next(
            c
            for c in _ltx_vae_candidates(name)
            if name in convert_ltx_vae_checkpoint_to_diffusers({**deciding, c: tensor})
            and convert_ltx_vae_checkpoint_to_diffusers({**deciding, c: tensor})[name] is tensor
        )
        tensors[original] = tensor.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"format": "pt"})


def _ltx_vae_candidates(name: str) -> list[str]:
    """Original names that diffusers' LTX VAE converter may turn into `name`, most renamed
    first (Lightricks' block indices, `res_blocks`, `last_*`, `per_channel_statistics`)."""
    import re

    def originals(rest: str) -> list[str]:
        rest = "." + rest
        for new, old in (
            (".resnets.", ".res_blocks."),
            ("conv_shortcut.conv.", "conv_shortcut."),
            (".norm3.", ".norm3.norm."),
            (".latents_mean", ".per_channel_statistics.mean-of-means"),
            (".latents_std", ".per_channel_statistics.std-of-means"),
        ):
            rest = rest.replace(new, old)
        plain = rest[1:]
        last = re.sub(r"^(time_embedder|scale_shift_table)", r"last_\1", plain)
        return [last, plain] if last != plain else [plain]

    block = re.match(
        r"(encoder|decoder)\.(?:(?:down|up)_blocks\.\d+(?:\.downsamplers\.0|\.upsamplers\.0"
        r"|\.conv_out|\.conv_in)?|mid_block)\.(.*)$",
        name,
    )
    if block is None:
        side, _, rest = name.partition(".")
        if side in ("encoder", "decoder"):
            return [f"vae.{side}.{r}" for r in originals(rest)]
        return [f"vae.{r}" for r in originals(name)]
    side, rest = block.groups()
    kind = "down" if side == "encoder" else "up"
    return [f"vae.{side}.{kind}_blocks.{j}.{r}" for j in range(16) for r in originals(rest)]


SEPARATE_I2V = {"hunyuanvideo-1.5"}
VARIANT_BUILDS = {"480p_i2v_step_distilled": {"image_to_video": True, "meanflow": True}}
"""Checkpoints whose published config differs from their family's tiny build (the
step-distilled HunyuanVideo 1.5 transformer is a MeanFlow one)."""
"""Engines whose image-to-video checkpoints are other repos with other components."""

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}"
    "{% else %}{% for c in m['content'] %}{{ c['text'] }}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen_tokenizer():
    """A byte-level BPE tokenizer (every byte a token, no merges) with a chat template."""
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import Qwen2Tokenizer

    vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


HY15_TARGET_SIZE = 96
"""The tiny HunyuanVideo 1.5 size buckets' side (the published 480p checkpoints say 640)."""


def build_hunyuan15(image_to_video: bool = False, meanflow: bool = False):
    from diffusers import (
        AutoencoderKLHunyuanVideo15,
        ClassifierFreeGuidance,
        FlowMatchEulerDiscreteScheduler,
        HunyuanVideo15ImageToVideoPipeline,
        HunyuanVideo15Pipeline,
        HunyuanVideo15Transformer3DModel,
    )
    from transformers import (
        ByT5Tokenizer,
        Qwen2_5_VLTextConfig,
        Qwen2_5_VLTextModel,
        SiglipImageProcessor,
        SiglipVisionConfig,
        SiglipVisionModel,
    )

    tokenizer = tiny_qwen_tokenizer()
    text_encoder = Qwen2_5_VLTextModel(
        Qwen2_5_VLTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_DIM,
            intermediate_size=37,
            num_hidden_layers=3,
            num_attention_heads=2,
            num_key_value_heads=1,
            bos_token_id=None,
            eos_token_id=None,
            rope_scaling={"type": "mrope", "mrope_section": [2, 3, 3]},
        )
    )
    tokenizer_2 = ByT5Tokenizer()
    text_encoder_2 = tiny_t5_encoder(len(tokenizer_2))
    latent = 4
    vae = AutoencoderKLHunyuanVideo15(
        latent_channels=latent,
        block_out_channels=(32, 32, 32, 32, 32),
        layers_per_block=1,
        spatial_compression_ratio=16,
        temporal_compression_ratio=4,
    )
    image_dim = 16
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=latent * 2 + 1,
        out_channels=latent,
        num_attention_heads=2,
        attention_head_dim=16,
        num_layers=2,
        num_refiner_layers=1,
        text_embed_dim=TEXT_DIM,
        text_embed_2_dim=TEXT_DIM,
        image_embed_dim=image_dim,
        rope_axes_dim=(4, 6, 6),
        target_size=HY15_TARGET_SIZE,
        task_type="i2v" if image_to_video else "t2v",
        use_meanflow=meanflow,
    )
    parts = dict(
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        vae=vae,
        scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        guider=ClassifierFreeGuidance(guidance_scale=6.0),
    )
    if not image_to_video:
        return HunyuanVideo15Pipeline(**parts)
    vision = SiglipVisionConfig(
        hidden_size=image_dim,
        intermediate_size=24,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=32,
        patch_size=16,
    )
    return HunyuanVideo15ImageToVideoPipeline(
        **parts,
        image_encoder=SiglipVisionModel(vision),
        feature_extractor=SiglipImageProcessor(size={"height": 32, "width": 32}),
    )


BUILDERS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "ltx-video": (build_ltx, ("text_to_video", "image_to_video")),
    "wan2.2-ti2v-5b": (build_wan, ("text_to_video", "image_to_video")),
    "mochi": (build_mochi, ("text_to_video",)),
    "hunyuanvideo-1.5": (build_hunyuan15, ("text_to_video", "image_to_video")),
}
