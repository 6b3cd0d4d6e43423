"""The diffusers video models dropreel runs, as data: repos, pipelines, rules, limits, profiles.

Adding a model that diffusers ships is one `ModelSpec` here, a small engine file beside
`gpu/ltx_video.py`, and one `register` call in `gpu/builtin.py`. Nothing in this module imports
torch or diffusers: the watcher, the CLI (`dropreel weights pull`) and the docs read it freely.

Frame rule: a video VAE compresses time by `temporal` frames per latent frame (plus the first
frame), so a clip must hold `temporal * n + 1` frames. Size grid: both sides must be multiples of
`grid` (the VAE's spatial compression times the transformer's patch size).

Revisions: `revision` is what `dropreel weights pull` fetches and what render loads, offline,
from the cache. Replace a branch name with the 40-hex commit you validated to pin it; the
commit actually loaded is recorded in every job's status.json (`settings.weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KINDS_T2V = ("text_to_video",)
KINDS_BOTH = ("text_to_video", "image_to_video")


@dataclass(frozen=True)
class Repo:
    """One Hugging Face repo in diffusers layout (model_index.json + component folders)."""

    repo_id: str
    revision: str = "main"


@dataclass(frozen=True)
class Variant:
    """One checkpoint of a model family and the pipeline class that runs each job kind."""

    name: str
    repo: Repo
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


@dataclass(frozen=True)
class Profile:
    """A speed/quality trade-off: which checkpoint, steps, guidance, default size, features."""

    variant: str
    steps: int
    guidance: float
    width: int
    height: int
    speed: Speed = Speed()


@dataclass(frozen=True)
class ModelSpec:
    """Everything about one engine that is a fact of the model rather than of the code."""

    name: str
    family: str
    kinds: tuple[str, ...]
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
    license: str
    license_url: str
    gpu: str
    default_profile: str = "balanced"

    def frames_for(self, seconds: float, fps: int) -> int:
        """The nearest frame count of the form temporal*n + 1 (n >= 1) for `seconds` at `fps`."""
        wanted = seconds * fps
        n = max(1, round((wanted - 1) / self.temporal))
        return self.temporal * n + 1

    def snap(self, value: int) -> int:
        """The nearest multiple of the size grid (never below one grid cell)."""
        return max(self.grid, round(value / self.grid) * self.grid)

    @property
    def repos(self) -> list[Repo]:
        seen: dict[str, Repo] = {}
        for variant in self.variants.values():
            seen.setdefault(f"{variant.repo.repo_id}@{variant.repo.revision}", variant.repo)
        return list(seen.values())

    def variant_for(self, profile: str, kind: str) -> Variant:
        """The checkpoint that serves `profile` for `kind` (a profile may name one per kind)."""
        name = self.profiles[profile].variant
        return self.variants.get(f"{name}:{kind}") or self.variants[name]


LTX_DISTILLED_CALL = {"decode_timestep": 0.05, "decode_noise_scale": 0.025}
LTX_PIPELINES = {"text_to_video": "LTXPipeline", "image_to_video": "LTXImageToVideoPipeline"}

LTX_VIDEO = ModelSpec(
    name="ltx-video",
    family="ltx",
    kinds=KINDS_BOTH,
    variants={
        "2b-distilled": Variant(
            "2b-distilled",
            Repo("Lightricks/LTX-Video-0.9.8-2B-distilled"),
            LTX_PIPELINES,
            LTX_DISTILLED_CALL,
        ),
        "13b-distilled": Variant(
            "13b-distilled",
            Repo(
                "Lightricks/LTX-Video-0.9.8-13B-distilled",
                revision="7c64400e1861cc0d7b98d570a1926d5408ec60cd",
            ),
            LTX_PIPELINES,
            LTX_DISTILLED_CALL,
        ),
        "13b-dev": Variant(
            "13b-dev",
            Repo(
                "Lightricks/LTX-Video-0.9.7-dev",
                revision="2101082f5eb5540770a2df43747feadb6f69b889",
            ),
            LTX_PIPELINES,
            LTX_DISTILLED_CALL,
        ),
    },
    profiles={
        "fast": Profile(
            "2b-distilled", 8, 1.0, 768, 512, Speed(attention="flash", fp8_storage=False)
        ),
        "balanced": Profile(
            "13b-distilled",
            8,
            1.0,
            1216,
            704,
            Speed(attention="flash", cache="first_block", cache_threshold=0.05, vae_tiling=True),
        ),
        "quality": Profile(
            "13b-dev", 30, 3.0, 1216, 704, Speed(attention="flash", compile=True, vae_tiling=True)
        ),
        "low_vram": Profile(
            "2b-distilled", 8, 1.0, 768, 512, Speed(fp8_storage=True, vae_tiling=True)
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
    license="LTX-Video Open Weights License (LTXV-OWL; commercial use allowed under its terms)",
    license_url="https://huggingface.co/Lightricks/LTX-Video/blob/main/LICENSE",
    gpu="H100",
    default_profile="fast",
)

WAN_PIPELINES = {"text_to_video": "WanPipeline", "image_to_video": "WanImageToVideoPipeline"}

WAN22_TI2V_5B = ModelSpec(
    name="wan2.2-ti2v-5b",
    family="wan",
    kinds=KINDS_BOTH,
    variants={
        "ti2v-5b": Variant(
            "ti2v-5b",
            Repo(
                "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
                revision="b8fff7315c768468a5333511427288870b2e9635",
            ),
            WAN_PIPELINES,
        ),
    },
    profiles={
        "fast": Profile(
            "ti2v-5b",
            20,
            5.0,
            832,
            480,
            Speed(attention="flash", cache="first_block", cache_threshold=0.08, vae_tiling=True),
        ),
        "balanced": Profile(
            "ti2v-5b",
            30,
            5.0,
            1280,
            704,
            Speed(attention="flash", cache="first_block", cache_threshold=0.05, vae_tiling=True),
        ),
        "quality": Profile(
            "ti2v-5b", 50, 5.0, 1280, 704, Speed(attention="flash", compile=True, vae_tiling=True)
        ),
        "low_vram": Profile("ti2v-5b", 30, 5.0, 832, 480, Speed(fp8_storage=True, vae_tiling=True)),
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
    license="Apache-2.0",
    license_url="https://huggingface.co/Wan-AI/Wan2.2-TI2V-5B-Diffusers",
    gpu="H100",
)

MOCHI = ModelSpec(
    name="mochi",
    family="mochi",
    kinds=KINDS_T2V,
    variants={
        "preview": Variant(
            "preview",
            Repo("genmo/mochi-1-preview", revision="14be5fcea23095ed330cb214647916a451e38b6e"),
            {"text_to_video": "MochiPipeline"},
        ),
    },
    profiles={
        "fast": Profile(
            "preview",
            32,
            4.5,
            848,
            480,
            Speed(attention="flash", cache="first_block", cache_threshold=0.08, vae_tiling=True),
        ),
        "balanced": Profile(
            "preview",
            64,
            4.5,
            848,
            480,
            Speed(attention="flash", cache="first_block", cache_threshold=0.05, vae_tiling=True),
        ),
        "quality": Profile("preview", 64, 4.5, 848, 480, Speed(attention="flash", vae_tiling=True)),
        "low_vram": Profile("preview", 64, 4.5, 848, 480, Speed(fp8_storage=True, vae_tiling=True)),
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
    license="Apache-2.0",
    license_url="https://huggingface.co/genmo/mochi-1-preview",
    gpu="H100",
)

HY15_T2V = {"text_to_video": "HunyuanVideo15Pipeline"}
HY15_I2V = {"image_to_video": "HunyuanVideo15ImageToVideoPipeline"}
HY15_REPO = "hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-{}"

HUNYUANVIDEO_15 = ModelSpec(
    name="hunyuanvideo-1.5",
    family="hunyuanvideo15",
    kinds=KINDS_BOTH,
    variants={
        "480p:text_to_video": Variant(
            "480p_t2v",
            Repo(HY15_REPO.format("480p_t2v"), "286be7ce72277246578a3e3cc2487e95ddae5bcf"),
            HY15_T2V,
        ),
        "480p:image_to_video": Variant(
            "480p_i2v",
            Repo(HY15_REPO.format("480p_i2v"), "5a700ee883ff4c1b3d887ec4188755a7a5e2f698"),
            HY15_I2V,
        ),
        "720p:text_to_video": Variant(
            "720p_t2v",
            Repo(HY15_REPO.format("720p_t2v"), "f4dbc4a1efa4ac8ea56680cdf79d9f455105e814"),
            HY15_T2V,
        ),
        "720p:image_to_video": Variant("720p_i2v", Repo(HY15_REPO.format("720p_i2v")), HY15_I2V),
    },
    profiles={
        "fast": Profile(
            "480p",
            30,
            6.0,
            848,
            480,
            Speed(attention="flash", cache="first_block", cache_threshold=0.08, vae_tiling=True),
        ),
        "balanced": Profile(
            "480p",
            50,
            6.0,
            848,
            480,
            Speed(attention="flash", cache="first_block", cache_threshold=0.05, vae_tiling=True),
        ),
        "quality": Profile(
            "720p", 50, 6.0, 1280, 720, Speed(attention="flash", compile=True, vae_tiling=True)
        ),
        "low_vram": Profile("480p", 50, 6.0, 848, 480, Speed(fp8_storage=True, vae_tiling=True)),
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
    license="Tencent Hunyuan Community License (excludes the EU, UK and South Korea; "
    "over 100M monthly users needs a licence from Tencent)",
    license_url="https://huggingface.co/tencent/HunyuanVideo-1.5/blob/main/LICENSE",
    gpu="H100",
)

MODELS: dict[str, ModelSpec] = {
    m.name: m for m in (LTX_VIDEO, WAN22_TI2V_5B, MOCHI, HUNYUANVIDEO_15)
}


def model_spec(name: str) -> ModelSpec:
    from gpu.errors import EngineNotFound

    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise EngineNotFound(f"no diffusers model named {name!r}; known: {known}") from None
