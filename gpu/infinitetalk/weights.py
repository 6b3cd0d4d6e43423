"""Which weights the talking-head engine needs, where they live, and how to fetch them.

`dropreel weights pull talking-head` downloads each set below at its pinned revision into
`<weights_dir>/<folder>/` (plain folders, the files exactly as published). Rendering never touches
the network: `resolve` only looks on disk and raises `WeightsMissing` naming the command that
fixes it.

Revisions: the Wan, InfiniteTalk and wav2vec2 pins are commit ids seen in several independent
public pins of these repositories (the wav2vec2 one is the `refs/pr/1` commit that adds
`model.safetensors`, which the InfiniteTalk README asks for). The two speed LoRAs are not pinned:
their repositories are third-party and no commit id could be confirmed offline, so `pull` fetches
`main` and prints the commit it got.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from gpu.errors import WeightsMissing

log = logging.getLogger(__name__)

PULL_COMMAND = "dropreel weights pull talking-head"


@dataclass(frozen=True)
class WeightSet:
    """One Hugging Face repository (or part of one) the engine reads."""

    name: str
    repo: str
    revision: str | None
    folder: str
    files: tuple[str, ...]
    license: str
    required: bool = True
    note: str = ""

    def path(self, root: Path) -> Path:
        return Path(root).expanduser() / self.folder


WEIGHTS: tuple[WeightSet, ...] = (
    WeightSet(
        name="wan-transformer",
        repo="Wan-AI/Wan2.1-I2V-14B-480P",
        revision="6b73f84e66371cdfe870c72acd6826e1d61cf279",
        folder="Wan2.1-I2V-14B-480P",
        files=("config.json", "diffusion_pytorch_model*.safetensors*"),
        license="Apache-2.0",
        note="the I2V-14B transformer in the reference's naming (7 shards, ~66 GB fp32)",
    ),
    WeightSet(
        name="wan-components",
        repo="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        revision="b184e23a8a16b20f108f727c902e769e873ffc73",
        folder="Wan2.1-I2V-14B-480P-Diffusers",
        files=(
            "model_index.json",
            "vae/*",
            "text_encoder/*",
            "tokenizer/*",
            "image_encoder/*",
            "image_processor/*",
        ),
        license="Apache-2.0",
        note="Wan VAE, UMT5-XXL text encoder + tokenizer, CLIP ViT-H image encoder (diffusers layout)",
    ),
    WeightSet(
        name="wav2vec2",
        repo="TencentGameMate/chinese-wav2vec2-base",
        revision="5f7a6cfdfc5440ec78748f79a9dd66f077c2b463",
        folder="chinese-wav2vec2-base",
        files=("config.json", "preprocessor_config.json", "model.safetensors"),
        license="MIT",
        note="the audio encoder InfiniteTalk was trained with (refs/pr/1: model.safetensors)",
    ),
    WeightSet(
        name="infinitetalk",
        repo="MeiGen-AI/InfiniteTalk",
        revision="d59847ebdacf19245bfca3fb23311c0cada8378a",
        folder="InfiniteTalk",
        files=("single/infinitetalk.safetensors",),
        license="Apache-2.0",
        note="the single-speaker audio adapter (330 tensors, ~2.5 B parameters)",
    ),
    WeightSet(
        name="fusionx-lora",
        repo="vrgamedevgirl84/Wan14BT2VFusioniX",
        revision=None,
        folder="Wan14BT2VFusioniX",
        files=("FusionX_LoRa/Wan2.1_I2V_14B_FusionX_LoRA.safetensors",),
        license="see the model card (not verified offline)",
        required=False,
        note="8-step LoRA for the fast profile",
    ),
    WeightSet(
        name="lightx2v-lora",
        repo="Kijai/WanVideo_comfy",
        revision=None,
        folder="WanVideo_comfy",
        files=("Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",),
        license="see the model card (not verified offline)",
        required=False,
        note="4-step LoRA for the fast profile (talking_head_fast_lora=lightx2v)",
    ),
)

BY_NAME = {w.name: w for w in WEIGHTS}
LORA_FILES = {
    "fusionx": ("fusionx-lora", "FusionX_LoRa/Wan2.1_I2V_14B_FusionX_LoRA.safetensors"),
    "lightx2v": (
        "lightx2v-lora",
        "Wan21_T2V_14B_lightx2v_cfg_step_distill_lora_rank32.safetensors",
    ),
}


def default_root() -> Path:
    from config.settings import get_settings

    return Path(getattr(get_settings(), "weights_dir", "~/.cache/dropreel/weights")).expanduser()


def resolve(name: str, root: Path | None = None, marker: str | None = None) -> Path:
    """The local folder of weight set `name`; raises WeightsMissing if it is not on disk."""
    spec = BY_NAME[name]
    base = spec.path(root or default_root())
    probe = base / marker if marker else base
    if not probe.exists():
        raise WeightsMissing(
            f"the talking-head weights {spec.repo} are not in {base} "
            f"(missing {probe.name}): run `{PULL_COMMAND}` on a machine with network access, "
            "or set DROPREEL_WEIGHTS_DIR to where they are"
        )
    return base


def lora_path(choice: str, root: Path | None = None) -> Path:
    """The safetensors file of the fast-profile LoRA `choice` (fusionx or lightx2v)."""
    if choice not in LORA_FILES:
        raise WeightsMissing(f"unknown LoRA {choice!r}: use one of {', '.join(LORA_FILES)}")
    name, file = LORA_FILES[choice]
    return resolve(name, root, marker=file) / file


def pull(
    root: Path | None = None, include_optional: bool = True, only: tuple[str, ...] = ()
) -> list[tuple[WeightSet, Path, str]]:
    """Download every weight set (at its pinned revision) into `root`. Returns what was fetched.

    Needs network access and `huggingface_hub`; gated or private repositories need HF_TOKEN in the
    environment (huggingface_hub reads it itself, it never passes through dropreel).
    """
    from huggingface_hub import HfApi, snapshot_download

    root = Path(root or default_root()).expanduser()
    done = []
    for spec in WEIGHTS:
        if only and spec.name not in only:
            continue
        if not spec.required and not include_optional:
            continue
        target = spec.path(root)
        target.mkdir(parents=True, exist_ok=True)
        revision = spec.revision
        if revision is None:
            revision = HfApi().model_info(spec.repo).sha or "main"
            log.warning("%s is not pinned; fetching its current commit %s", spec.repo, revision)
        snapshot_download(
            repo_id=spec.repo,
            revision=revision,
            allow_patterns=list(spec.files),
            local_dir=str(target),
        )
        (target / ".dropreel-revision").write_text(f"{spec.repo}@{revision}\n")
        done.append((spec, target, revision))
    return done


def describe(root: Path | None = None) -> list[dict]:
    """Each weight set, its pin, licence and whether it is on disk (for `weights list`)."""
    root = Path(root or default_root()).expanduser()
    return [
        {
            "name": w.name,
            "repo": w.repo,
            "revision": w.revision or "main (unpinned)",
            "license": w.license,
            "required": w.required,
            "present": w.path(root).exists(),
            "path": str(w.path(root)),
            "note": w.note,
        }
        for w in WEIGHTS
    ]
