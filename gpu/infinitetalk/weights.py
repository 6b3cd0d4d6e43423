"""Which weights the talking-head engine reads, and where it finds them on disk.

Each set is a `WeightSource` (gpu/weights.py) with its own `folder` under DROPREEL_WEIGHTS_DIR:
`dropreel weights pull talking-head` (the same `gpu.weights.pull` every engine uses) downloads
the files its patterns name, exactly as published, into `<weights_dir>/<folder>/`; those are
exactly the files `pipeline.Components.load` and the LoRA fuser open
(tests/engines/test_weights.py checks it on the tiny layouts). Rendering never touches the
network: `resolve` only looks on disk and raises `WeightsMissing` naming the command that fixes
it.

Revisions: the Wan, InfiniteTalk and wav2vec2 pins are commit ids seen in several independent
public pins of these repositories (the wav2vec2 one is the `refs/pr/1` commit that adds
`model.safetensors`, which the InfiniteTalk README asks for). The two speed LoRAs are not pinned:
their repositories are third-party and no commit id could be confirmed offline, so a pull
fetches `main`. Both LoRAs belong to the fast profile (`talking_head_fast_lora` picks one when
a worker starts), so pulling the fast profile fetches both.
"""

from __future__ import annotations

from pathlib import Path

from gpu.errors import WeightsMissing
from gpu.weights import Places, WeightSource, cast_shards, locate, pull_command

PULL_COMMAND = pull_command("talking-head")
FAST = ("fast",)


def store_bf16(download: Path, folder: Path) -> None:
    """The published fp32 transformer stored once in bf16, the dtype the engine runs on GPUs.

    Same files, same tensor names; the modules the model keeps in float32 stay float32, so a
    GPU load reads exactly the values it would have cast from the published files, from half
    the bytes. (A CPU render, which runs in float32, then starts from bf16 values.)
    """
    from gpu.infinitetalk.keymap import KeyMapError, map_key
    from gpu.infinitetalk.model import InfiniteTalkTransformer

    keep = tuple(InfiniteTalkTransformer._keep_in_fp32_modules)

    def keep_fp32(key: str) -> bool:
        try:
            name = map_key(key)
        except KeyMapError:
            name = key
        return any(m in name for m in keep)

    cast_shards(download, folder, "bfloat16", keep_fp32)


WEIGHTS: tuple[WeightSource, ...] = (
    WeightSource(
        name="wan-transformer",
        repo_id="Wan-AI/Wan2.1-I2V-14B-480P",
        revision="6b73f84e66371cdfe870c72acd6826e1d61cf279",
        folder="Wan2.1-I2V-14B-480P",
        patterns=("config.json", "diffusion_pytorch_model*.safetensors"),
        size_gb=66,
        license="Apache-2.0",
        note="the I2V-14B transformer in the reference's naming (7 shards, ~66 GB fp32 "
        "downloaded, stored as ~33 GB bf16)",
        store=store_bf16,
    ),
    WeightSource(
        name="wan-components",
        repo_id="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        revision="b184e23a8a16b20f108f727c902e769e873ffc73",
        folder="Wan2.1-I2V-14B-480P-Diffusers",
        patterns=(
            "vae/*",
            "text_encoder/*",
            "tokenizer/*",
            "image_encoder/*",
            "image_processor/*",
        ),
        size_gb=25,
        license="Apache-2.0",
        note="Wan VAE, UMT5-XXL text encoder + tokenizer, CLIP ViT-H image encoder (diffusers layout)",
    ),
    WeightSource(
        name="wav2vec2",
        repo_id="TencentGameMate/chinese-wav2vec2-base",
        revision="5f7a6cfdfc5440ec78748f79a9dd66f077c2b463",
        folder="chinese-wav2vec2-base",
        patterns=("config.json", "preprocessor_config.json", "model.safetensors"),
        size_gb=0.4,
        license="MIT",
        note="the audio encoder InfiniteTalk was trained with (refs/pr/1: model.safetensors)",
    ),
    WeightSource(
        name="infinitetalk",
        repo_id="MeiGen-AI/InfiniteTalk",
        revision="d59847ebdacf19245bfca3fb23311c0cada8378a",
        folder="InfiniteTalk",
        patterns=("single/infinitetalk.safetensors", "multi/infinitetalk.safetensors"),
        size_gb=20,
        license="Apache-2.0",
        note="the single- and multi-person audio adapters (330 tensors, ~2.5 B parameters "
        "each; the multi-person one renders two speakers)",
    ),
    WeightSource(
        name="fusionx-lora",
        repo_id="vrgamedevgirl84/Wan14BT2VFusioniX",
        revision=None,
        folder="Wan14BT2VFusioniX",
        patterns=("FusionX_LoRa/Wan2.1_I2V_14B_FusionX_LoRA.safetensors",),
        size_gb=0.6,
        profiles=FAST,
        license="see the model card (not verified offline)",
        note="8-step LoRA for the fast profile (talking_head_fast_lora=fusionx)",
    ),
    WeightSource(
        name="lightx2v-lora",
        repo_id="Kijai/WanVideo_comfy",
        revision=None,
        folder="WanVideo_comfy",
        patterns=("Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",),
        size_gb=0.3,
        profiles=FAST,
        license="see the model card (not verified offline)",
        note="the fast profile's 4-step step/CFG-distillation LoRA (the default)",
    ),
)

BY_NAME = {w.name: w for w in WEIGHTS}
LORAS = {"fusionx": BY_NAME["fusionx-lora"], "lightx2v": BY_NAME["lightx2v-lora"]}


def resolve(name: str, root: Path | None = None, marker: str | None = None) -> Path:
    """The local folder of weight set `name`; raises WeightsMissing if it is not on disk."""
    source = BY_NAME[name]
    places = Places.from_settings(weights_dir=root)
    what = f"the talking-head weights {source.repo_id}"
    return locate(source, places, PULL_COMMAND, what, marker)


def lora_path(choice: str, root: Path | None = None) -> Path:
    """The safetensors file of the fast-profile LoRA `choice` (fusionx or lightx2v)."""
    if choice not in LORAS:
        raise WeightsMissing(f"unknown LoRA {choice!r}: use one of {', '.join(LORAS)}")
    source = LORAS[choice]
    (file,) = source.patterns
    return resolve(source.name, root) / file
