"""The diffusers video models dropreel runs, as data: repos, pipelines, rules, limits, profiles.

Each model is one `ModelSpec`: an `EngineSpec` (kinds, GPU, licence, longest render, profiles,
weights) with the model's own rules added, registered as it is by `gpu/builtin.py`. Adding a
model that diffusers ships is one `ModelSpec` here, a small engine file beside
`gpu/ltx_video.py`, and one line in `gpu/builtin.py`. Nothing in this module imports torch or
diffusers: the watcher, the CLI (`dropreel weights pull`) and the docs read it freely.

Frame rule: a video VAE compresses time by `temporal` frames per latent frame (plus the first
frame), so a clip must hold `temporal * n + 1` frames. Size grid: both sides must be multiples of
`grid` (the VAE's spatial compression times the transformer's patch size).

Weights: each checkpoint is a `WeightSource` (gpu/weights.py) in the Hugging Face cache;
`DIFFUSERS_FILES` are the files `from_pretrained` opens in a diffusers-layout repo (never the
single-file checkpoints some repos also hold at their top level). A spec's `weights` are derived
from its variants, each marked with the profiles that use it.

Revisions: `revision` is what `dropreel weights pull` fetches and what render loads, offline,
from the cache. Replace a branch name with the 40-hex commit you validated to pin it; the
commit actually loaded is recorded in every job's status.json (`settings.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from gpu.registry import EngineSpec
from gpu.weights import WeightSource

KINDS_T2V = ("text_to_video",)
KINDS_BOTH = ("text_to_video", "image_to_video")


DIFFUSERS_FILES = (
    "model_index.json",
    "*/config.json",
    "*/*_config.json",
    "*/*.safetensors",
    "*/*.safetensors.index.json",
    "*/tokenizer.json",
    "*/spiece.model",
    "*/vocab.json",
    "*/merges.txt",
    "*/special_tokens_map.json",
    "*/chat_template.jinja",
)
"""What a pipeline's `from_pretrained` opens: the index, each component's config and
safetensors, the tokenizers' files (tests/engines/test_weights.py checks it on every tiny
layout)."""


def checkpoint(repo_id: str, revision: str | None, size_gb: float) -> WeightSource:
    """A diffusers-layout repo in the Hugging Face cache."""
    return WeightSource(
        repo_id=repo_id, revision=revision, patterns=DIFFUSERS_FILES, size_gb=size_gb
    )


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One checkpoint of a model family and the pipeline class that runs each job kind."""

    name: str
    repo: WeightSource
    pipelines: dict[str, str]
    call: dict[str, Any] = field(default_factory=dict)
    """Extra pipeline-call keyword arguments this checkpoint wants (e.g. decode_timestep)."""


@dataclass(frozen=True)
class Speed:
    """diffusers speed features for a profile; applied on CUDA only, each recorded."""

    attention: str | None = None
    """`transformer.set_attention_backend(...)`: 'flash', '_flash_3', 'sage', ... (tried in order
    of preference by the engine: this one, then the default)."""
    cache: str | None = None
    """'first_block' (FirstBlockCacheConfig) or 'mag' (MagCacheConfig) via `enable_cache`."""
    cache_threshold: float | None = None
    compile: bool = False
    """`transformer.compile_repeated_blocks(fullgraph=True)` (regional torch.compile)."""
    fp8_storage: bool = False
    """`transformer.enable_layerwise_casting(float8_e4m3fn, bfloat16)`: weights stored in fp8."""
    vae_tiling: bool = False


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A speed/quality trade-off: which checkpoint, steps, guidance, default size, features."""

    variant: str
    steps: int
    guidance: float
    width: int
    height: int
    speed: Speed = Speed()


def cached(threshold: float) -> Speed:
    """Flash attention, first-block cache at `threshold`, VAE tiling: the fast/balanced preset."""
    return Speed(attention="flash", cache="first_block", cache_threshold=threshold, vae_tiling=True)


COMPILED = Speed(attention="flash", compile=True, vae_tiling=True)
"""The quality preset: no cache, regional torch.compile."""
LOW_VRAM = Speed(fp8_storage=True, vae_tiling=True)
"""fp8 weight storage and VAE tiling, for smaller GPUs."""


@dataclass(frozen=True, kw_only=True)
class ModelSpec(EngineSpec):
    """A diffusers engine: its registry facts plus the model's checkpoints and rules."""

    family: str
    variants: dict[str, Variant]
    profiles: dict[str, Profile]
    temporal: int
    grid: int
    fps: int
    allowed_fps: tuple[int, ...]
    max_frames: int
    min_side: int
    max_side: int
    max_pixels: int
    default_seconds: float
    default_profile: str = "balanced"

    def __post_init__(self) -> None:
        # The weights are the variants' repos, each marked with the profiles that use it.
        users: dict[WeightSource, list[str]] = {}
        for profile in self.profiles:
            for kind in self.kinds:
                repo = self.variant_for(profile, kind).repo
                users.setdefault(repo, [])
                if profile not in users[repo]:
                    users[repo].append(profile)
        derived = tuple(replace(repo, profiles=tuple(p)) for repo, p in users.items())
        object.__setattr__(self, "weights", derived)

    def frames_for(self, seconds: float, fps: int) -> int:
        """The nearest frame count of the form temporal*n + 1 (n >= 1) for `seconds` at `fps`."""
        wanted = seconds * fps
        n = max(1, round((wanted - 1) / self.temporal))
        return self.temporal * n + 1

    def snap(self, value: int) -> int:
        """The nearest multiple of the size grid (never below one grid cell)."""
        return max(self.grid, round(value / self.grid) * self.grid)

    @property
    def repos(self) -> list[WeightSource]:
        return list(dict.fromkeys(v.repo for v in self.variants.values()))

    def variant_for(self, profile: str, kind: str) -> Variant:
        """The checkpoint that serves `profile` for `kind` (a profile may name one per kind)."""
        name = self.profiles[profile].variant
        return self.variants.get(f"{name}:{kind}") or self.variants[name]


# max_render_seconds sizes each engine's Modal timeout: the model's longest clip at its quality
# profile, at a pessimistic speed on the default GPU. A render that outlives it is stopped and
# retried as a transient failure.

LTX_DISTILLED_CALL = {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
LTX_PIPELINES = {"text_to_video": "LTXPipeline", "image_to_video": "LTXImageToVideoPipeline"}


def ltx_variant(name: str, repo: WeightSource) -> Variant:
    return Variant(name=name, repo=repo, pipelines=LTX_PIPELINES, call=LTX_DISTILLED_CALL)


LTX_VIDEO = ModelSpec(
    name="ltx-video",
    kinds=KINDS_BOTH,
    target="gpu.ltx_video:LTXVideoEngine",
    gpu="H100",
    description="LTX-Video (Lightricks): 2B distilled (fast), 13B (balanced, quality).",
    license="LTX-Video Open Weights License (LTXV-OWL; commercial use allowed under its terms)",
    license_url="https://huggingface.co/Lightricks/LTX-Video/blob/main/LICENSE",
    max_render_seconds=1800,
    family="ltx",
    variants={
        "2b-distilled": ltx_variant(
            "2b-distilled", checkpoint("Lightricks/LTX-Video-0.9.8-2B-distilled", None, 15)
        ),
        "13b-distilled": ltx_variant(
            "13b-distilled",
            checkpoint(
                "Lightricks/LTX-Video-0.9.8-13B-distilled",
                "7c64400e1861cc0d7b98d570a1926d5408ec60cd",
                36,
            ),
        ),
        "13b-dev": ltx_variant(
            "13b-dev",
            checkpoint(
                "Lightricks/LTX-Video-0.9.7-dev", "2101082f5eb5540770a2df43747feadb6f69b889", 36
            ),
        ),
    },
    profiles={
        "fast": Profile(
            variant="2b-distilled",
            steps=8,
            guidance=1.0,
            width=768,
            height=512,
            speed=Speed(attention="flash"),
        ),
        "balanced": Profile(
            variant="13b-distilled",
            steps=8,
            guidance=1.0,
            width=1216,
            height=704,
            speed=cached(0.05),
        ),
        "quality": Profile(
            variant="13b-dev", steps=30, guidance=3.0, width=1216, height=704, speed=COMPILED
        ),
        "low_vram": Profile(
            variant="2b-distilled", steps=8, guidance=1.0, width=768, height=512, speed=LOW_VRAM
        ),
    },
    temporal=8,
    grid=32,
    fps=24,
    allowed_fps=(24, 25, 30),
    max_frames=257,
    min_side=64,
    max_side=1280,
    max_pixels=1280 * 720,
    default_seconds=5.0,
    default_profile="fast",
)

WAN_PIPELINES = {"text_to_video": "WanPipeline", "image_to_video": "WanImageToVideoPipeline"}

WAN22_TI2V_5B = ModelSpec(
    name="wan2.2-ti2v-5b",
    kinds=KINDS_BOTH,
    target="gpu.wan22:Wan22Engine",
    gpu="H100",
    description="Wan2.2 TI2V-5B (Wan-AI): 1280x704 at 24 fps, text or image to video.",
    license="Apache-2.0",
    license_url="https://huggingface.co/Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    max_render_seconds=3600,
    family="wan",
    variants={
        "ti2v-5b": Variant(
            name="ti2v-5b",
            repo=checkpoint(
                "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "b8fff7315c768468a5333511427288870b2e9635", 34
            ),
            pipelines=WAN_PIPELINES,
        ),
    },
    profiles={
        "fast": Profile(
            variant="ti2v-5b", steps=20, guidance=5.0, width=832, height=480, speed=cached(0.08)
        ),
        "balanced": Profile(
            variant="ti2v-5b", steps=30, guidance=5.0, width=1280, height=704, speed=cached(0.05)
        ),
        "quality": Profile(
            variant="ti2v-5b", steps=50, guidance=5.0, width=1280, height=704, speed=COMPILED
        ),
        "low_vram": Profile(
            variant="ti2v-5b", steps=30, guidance=5.0, width=832, height=480, speed=LOW_VRAM
        ),
    },
    temporal=4,
    grid=32,
    fps=24,
    allowed_fps=(24,),
    max_frames=121,
    min_side=64,
    max_side=1280,
    max_pixels=1280 * 704,
    default_seconds=5.0,
)

MOCHI = ModelSpec(
    name="mochi",
    kinds=KINDS_T2V,
    target="gpu.mochi:MochiEngine",
    gpu="H100",
    description="Mochi 1 preview (Genmo): 848x480 at 30 fps, text to video.",
    license="Apache-2.0",
    license_url="https://huggingface.co/genmo/mochi-1-preview",
    max_render_seconds=3600,
    family="mochi",
    variants={
        "preview": Variant(
            name="preview",
            repo=checkpoint(
                "genmo/mochi-1-preview", "14be5fcea23095ed330cb214647916a451e38b6e", 60
            ),
            pipelines={"text_to_video": "MochiPipeline"},
        ),
    },
    profiles={
        "fast": Profile(
            variant="preview", steps=32, guidance=4.5, width=848, height=480, speed=cached(0.08)
        ),
        "balanced": Profile(
            variant="preview", steps=64, guidance=4.5, width=848, height=480, speed=cached(0.05)
        ),
        "quality": Profile(
            variant="preview",
            steps=64,
            guidance=4.5,
            width=848,
            height=480,
            speed=Speed(attention="flash", vae_tiling=True),
        ),
        "low_vram": Profile(
            variant="preview", steps=64, guidance=4.5, width=848, height=480, speed=LOW_VRAM
        ),
    },
    temporal=6,
    grid=16,
    fps=30,
    allowed_fps=(30,),
    max_frames=163,
    min_side=64,
    max_side=848,
    max_pixels=848 * 480,
    default_seconds=5.0,
)

HY15_T2V = {"text_to_video": "HunyuanVideo15Pipeline"}
HY15_I2V = {"image_to_video": "HunyuanVideo15ImageToVideoPipeline"}


def hy15_variant(task: str, revision: str | None, pipelines: dict[str, str]) -> Variant:
    repo = f"hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-{task}"
    return Variant(name=task, repo=checkpoint(repo, revision, 35), pipelines=pipelines)


HUNYUANVIDEO_15 = ModelSpec(
    name="hunyuanvideo-1.5",
    kinds=KINDS_BOTH,
    target="gpu.hunyuan15:HunyuanVideo15Engine",
    gpu="H100",
    description="HunyuanVideo 1.5 (Tencent): 480p (fast, balanced) and 720p (quality).",
    license="Tencent Hunyuan Community License (excludes the EU, UK and South Korea; "
    "over 100M monthly users needs a licence from Tencent)",
    license_url="https://huggingface.co/tencent/HunyuanVideo-1.5/blob/main/LICENSE",
    max_render_seconds=5400,
    family="hunyuanvideo15",
    variants={
        "480p:text_to_video": hy15_variant(
            "480p_t2v", "286be7ce72277246578a3e3cc2487e95ddae5bcf", HY15_T2V
        ),
        "480p:image_to_video": hy15_variant(
            "480p_i2v", "5a700ee883ff4c1b3d887ec4188755a7a5e2f698", HY15_I2V
        ),
        "720p:text_to_video": hy15_variant(
            "720p_t2v", "f4dbc4a1efa4ac8ea56680cdf79d9f455105e814", HY15_T2V
        ),
        "720p:image_to_video": hy15_variant("720p_i2v", None, HY15_I2V),
    },
    profiles={
        "fast": Profile(
            variant="480p", steps=30, guidance=6.0, width=848, height=480, speed=cached(0.08)
        ),
        "balanced": Profile(
            variant="480p", steps=50, guidance=6.0, width=848, height=480, speed=cached(0.05)
        ),
        "quality": Profile(
            variant="720p", steps=50, guidance=6.0, width=1280, height=720, speed=COMPILED
        ),
        "low_vram": Profile(
            variant="480p", steps=50, guidance=6.0, width=848, height=480, speed=LOW_VRAM
        ),
    },
    temporal=4,
    grid=16,
    fps=24,
    allowed_fps=(24,),
    max_frames=121,
    min_side=64,
    max_side=1280,
    max_pixels=1280 * 720,
    default_seconds=5.0,
)

MODELS: dict[str, ModelSpec] = {
    m.name: m for m in (LTX_VIDEO, WAN22_TI2V_5B, MOCHI, HUNYUANVIDEO_15)
}
