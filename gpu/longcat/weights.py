"""Which weights the LongCat-Video-Avatar engine reads, and where it finds them on disk.

Three Hugging Face repositories, as the reference's demo lays them out side by side:
`meituan-longcat/LongCat-Video` (the UMT5-XXL text encoder and tokenizer, the Wan VAE, and the
scheduler v1.0 uses), `meituan-longcat/LongCat-Video-Avatar-1.5` (the v1.5 DiT in `base_model/`,
the DMD LoRA, whisper-large-v3 and its own scheduler) and `meituan-longcat/LongCat-Video-Avatar`
(the v1.0 DiT in `avatar_single/` and chinese-wav2vec2-base). Each is a `WeightSource`
(gpu/weights.py) with its own folder under DROPREEL_WEIGHTS_DIR, pulled by
`dropreel weights pull longcat-avatar [--profile P]`; the loader opens exactly the files the
patterns name. Rendering never touches the network: `resolve` only looks on disk.

Revisions: no commit id of these repositories could be confirmed offline, so a pull fetches
`main` (docs/ENGINES.md says so); pin them with `dropreel weights list` after the first pull.
The v1.5 repository is three sources (shared files, the bf16 DiT for `fast`, the INT8 DiT for
`low_vram`), so a profile pulls only the DiT it loads. Not pulled: `vocal_separator/` (vocal
separation is not run), the multi-speaker DiTs.
"""

from __future__ import annotations

from pathlib import Path

from gpu.weights import Places, WeightSource, locate, pull_command

ENGINE = "longcat-avatar"
V15 = ("fast", "low_vram")
V10 = ("quality",)
LICENSE = "MIT"

WEIGHTS: tuple[WeightSource, ...] = (
    WeightSource(
        name="longcat-video",
        repo_id="meituan-longcat/LongCat-Video",
        revision=None,
        folder="LongCat-Video",
        patterns=("tokenizer/*", "text_encoder/*", "vae/*", "scheduler/*"),
        size_gb=12,
        license=LICENSE,
        note="UMT5-XXL text encoder + tokenizer, Wan VAE, the base scheduler (v1.0 uses it)",
    ),
    WeightSource(
        name="avatar-1.5",
        repo_id="meituan-longcat/LongCat-Video-Avatar-1.5",
        revision=None,
        folder="LongCat-Video-Avatar-1.5",
        patterns=("lora/dmd_lora.safetensors", "whisper-large-v3/*", "scheduler/*"),
        size_gb=5.7,
        profiles=V15,
        license=LICENSE,
        note="v1.5's DMD LoRA (8 steps, 2.5 GB), whisper-large-v3, scheduler",
    ),
    WeightSource(
        name="avatar-1.5-dit",
        repo_id="meituan-longcat/LongCat-Video-Avatar-1.5",
        revision=None,
        folder="LongCat-Video-Avatar-1.5",
        patterns=("base_model/config.json", "base_model/diffusion_pytorch_model*.safetensors"),
        size_gb=31.7,
        profiles=("fast",),
        license=LICENSE,
        note="the v1.5 DiT in bf16 (15.9B parameters)",
    ),
    WeightSource(
        name="avatar-1.5-int8",
        repo_id="meituan-longcat/LongCat-Video-Avatar-1.5",
        revision=None,
        folder="LongCat-Video-Avatar-1.5",
        patterns=("base_model_int8/config.json", "base_model_int8/quantized_model*.safetensors"),
        size_gb=16,
        profiles=("low_vram",),
        license=LICENSE,
        note="the v1.5 DiT, weight-only INT8 per output channel (low_vram)",
    ),
    WeightSource(
        name="avatar-1.0",
        repo_id="meituan-longcat/LongCat-Video-Avatar",
        revision=None,
        folder="LongCat-Video-Avatar",
        patterns=(
            "avatar_single/config.json",
            "avatar_single/diffusion_pytorch_model*.safetensors",
            "chinese-wav2vec2-base/*",
        ),
        size_gb=32,
        profiles=V10,
        license=LICENSE,
        note="v1.0 single-speaker DiT and chinese-wav2vec2-base (the quality profile)",
    ),
)

BY_NAME = {w.name: w for w in WEIGHTS}


def resolve(name: str, root: Path | None = None, marker: str | None = None) -> Path:
    """The local folder of weight set `name`; raises WeightsMissing if it is not on disk."""
    source = BY_NAME[name]
    places = Places.from_settings(weights_dir=root)
    profile = None if source.profiles is None else source.profiles[0]
    what = f"the LongCat-Video-Avatar weights {source.repo_id}"
    return locate(source, places, pull_command(ENGINE, profile), what, marker)
