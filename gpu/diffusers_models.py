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


SINGLE_FILE_CONFIG_FILES = (
    *(p for p in DIFFUSERS_FILES if p not in ("*/*.safetensors", "*/*.safetensors.index.json")),
    "text_encoder/*.safetensors",
    "text_encoder/*.safetensors.index.json",
)
"""What `from_single_file(..., config=repo)` opens in the diffusers repo that configures a
single-file checkpoint: every config, the text encoder's weights and the tokenizer, never the
transformer or VAE weights (those come from the single file)."""


@dataclass(frozen=True, kw_only=True)
class Multiscale:
    """The makers' multiscale flow for a checkpoint: render at `downscale` of the size, upsample
    the latents x2 with their spatial upscaler (diffusers' `LTXLatentUpsamplePipeline`), refine
    a few steps at the doubled size, then resize the frames to the planned size."""

    upsampler: WeightSource
    file: str
    """The upscaler's single file in `upsampler` (its config in the file's metadata)."""
    refine_timesteps: tuple[float, ...]
    refine_strength: float
    downscale: float = 2 / 3
    adain_factor: float = 1.0
    tone_map: float | None = None
    """`tone_map_compression_ratio` of the upsampling, where the checkpoint's recipe has it."""

    @property
    def refine_steps(self) -> int:
        """The steps the refine pass runs: the pipeline keeps int(len * strength) timesteps."""
        return int(len(self.refine_timesteps) * self.refine_strength)

    def first_size(self, width: int, height: int, grid: int) -> tuple[int, int]:
        """The first pass's size: `downscale` of the planned size, floored to the grid."""
        return tuple(  # type: ignore[return-value]
            max(grid, int(side * self.downscale) // grid * grid) for side in (width, height)
        )

    def describe(self) -> str:
        tone = f", tone map {self.tone_map}" if self.tone_map else ""
        return (
            f"latent upsampler x2 from {round(self.downscale, 3):g} size{tone}; refine timesteps "
            f"{list(self.refine_timesteps)} at strength {self.refine_strength}"
        )


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One checkpoint of a model family and the pipeline class that runs each job kind."""

    name: str
    repo: WeightSource
    pipelines: dict[str, str]
    call: dict[str, Any] = field(default_factory=dict)
    """Extra pipeline-call keyword arguments this checkpoint wants (e.g. decode_timestep)."""
    load: dict[str, Any] = field(default_factory=dict)
    """Extra `from_pretrained` arguments (e.g. `variant="bf16"`: one precision on disk)."""
    max_frames: int | None = None
    """A longer limit this checkpoint documents than the model's `max_frames` (None: that)."""
    single_file: str | None = None
    """The file in `repo` holding the transformer and VAE in the makers' own layout, loaded by
    diffusers' single-file loading (`from_single_file`) with `config`; None: `repo` is a
    diffusers-layout repo."""
    config: WeightSource | None = None
    """For a single file: the diffusers repo whose configs, text encoder, tokenizer and
    scheduler complete the pipeline."""
    multiscale: Multiscale | None = None
    """The makers' multiscale flow, where their recipe for this checkpoint uses it."""
    steps: int | None = None
    """The step count the makers fix for this checkpoint (step-distilled), over the profile's."""
    dmd: bool = False
    """Distribution-matching distilled: each step predicts the clean latents and noises them
    afresh to the next timestep (FastVideo's `DmdDenoisingStage`; diffusers'
    `FlowMatchLCMScheduler` does the same arithmetic), sigma = timestep / 1000."""

    @property
    def sources(self) -> tuple[WeightSource, ...]:
        """Every repository this checkpoint loads from."""
        upsampler = self.multiscale.upsampler if self.multiscale else None
        return tuple(s for s in (self.repo, self.config, upsampler) if s is not None)

    @property
    def label(self) -> str:
        """The checkpoint as status.json and the recipe table name it."""
        if self.single_file:
            return f"{self.repo.repo_id}/{self.single_file}"
        return self.repo.repo_id


@dataclass(frozen=True)
class Speed:
    """diffusers speed features for a profile; applied on CUDA, each outcome recorded.

    Which attention backend and whether a cache may run are facts of the model
    (`ModelSpec.attention`, `ModelSpec.first_block_cache`), not of the profile: a profile only
    asks for them.
    """

    attention: bool = False
    """Use the model's attention backend (`transformer.set_attention_backend(spec.attention)`)."""
    cache_threshold: float | None = None
    """First-Block Cache at this threshold (`enable_cache(FirstBlockCacheConfig(...))`)."""
    compile: bool = False
    """`transformer.compile_repeated_blocks(fullgraph=True)` (regional torch.compile)."""
    fp8_storage: bool = False
    """`transformer.enable_layerwise_casting(float8_e4m3fn, compute dtype)`: fp8 weights."""
    vae_tiling: bool = False

    @property
    def changes_modules(self) -> tuple[bool, bool]:
        """What cannot be undone on a loaded transformer (fp8 rounding, compiled blocks): a
        pipeline loaded with one value is never reused for another."""
        return (self.fp8_storage, self.compile)


@dataclass(frozen=True, kw_only=True)
class Profile:
    """A speed/quality trade-off: which checkpoint, its schedule, guidance, size, features."""

    variant: str
    steps: int
    guidance: float
    width: int
    height: int
    speed: Speed = Speed()
    timesteps: tuple[float, ...] | None = None
    """The checkpoint's own schedule (distilled models); None: the scheduler's default."""
    guidance_rescale: float | None = None
    """Passed as `guidance_rescale` where the recipe uses it."""


def cached(threshold: float) -> Speed:
    """The model's attention backend, First-Block Cache at `threshold`, VAE tiling."""
    return Speed(attention=True, cache_threshold=threshold, vae_tiling=True)


FAST_ATTENTION = Speed(attention=True, vae_tiling=True)
"""The model's attention backend and VAE tiling, nothing that changes the result's recipe."""
COMPILED = Speed(attention=True, compile=True, vae_tiling=True)
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
    negative_prompt: str | None = None
    """The makers' negative prompt, used under classifier-free guidance when a job gives none."""
    attention: str | None = None
    """The diffusers attention backend that supports what this model passes (masks or not);
    None: the model's attention does not go through diffusers' backend dispatch."""
    first_block_cache: bool = False
    """diffusers registers this model's transformer block for First-Block Cache."""
    float32_modules: tuple[str, ...] = ()
    """Pipeline components the recipe keeps in float32 (e.g. Wan's VAE)."""

    def __post_init__(self) -> None:
        # The weights are the variants' repos, each marked with the profiles that use it.
        users: dict[WeightSource, list[str]] = {}
        for profile in self.profiles:
            for kind in self.kinds:
                for repo in self.variant_for(profile, kind).sources:
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

    def fit(self, aspect: float, area: int) -> tuple[int, int]:
        """The grid size closest to `aspect` within `area` pixels and the longest side.

        Wan2.2's own rule for image-to-video (`best_output_size`): floor one side to the grid,
        floor the other within the budget, try both orders, keep the closer aspect. Flooring
        never leaves the budget, so a photo is never refused for rounding.
        """
        area = min(area, self.max_pixels)
        grid = self.grid
        width = (area * aspect) ** 0.5
        longest = self.max_side // grid * grid
        candidates = []
        for first_width in (True, False):
            if first_width:
                w = min(longest, max(grid, int(width // grid * grid)))
                h = min(longest, max(grid, int(area / w // grid * grid)))
            else:
                h = min(longest, max(grid, int(area / width // grid * grid)))
                w = min(longest, max(grid, int(area / h // grid * grid)))
            candidates.append((max(w / h / aspect, aspect * h / w), w, h))
        _, w, h = min(candidates)
        return w, h

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

LTX_CALL = {"decode_timestep": 0.05, "decode_noise_scale": 0.025, "image_cond_noise_scale": 0.0}
"""diffusers' LTX-Video docs, for the 0.9.7/0.9.8 checkpoints (dev and distilled alike)."""
LTX_PIPELINES = {"text_to_video": "LTXConditionPipeline", "image_to_video": "LTXConditionPipeline"}
LTX_DISTILLED_TIMESTEPS = (1000, 993, 987, 981, 975, 909, 725, 0.03)
"""The distilled models' own 8-step schedule (diffusers' LTX-Video docs, 0.9.7/0.9.8 distilled)."""
LTX_NEGATIVE = "worst quality, inconsistent motion, blurry, jittery, distorted"
LTX_098_LONGEST = 361
"""0.9.8 "supports generating very long videos": diffusers' LTX-Video docs render 361 frames
(12 s at 30 fps) in one `LTXConditionPipeline` call; 0.9.7 stays at the card's 257."""


@dataclass(frozen=True)
class LongMode:
    """LTX-Video's own long mode (`LTXI2VLongMultiPromptPipeline`): Lightricks' ComfyUI
    workflow `ltxv-13b-i2v-long-multi-prompt.json`, first pass (docs/ENGINES.md, [L6])."""

    sigmas: tuple[float, ...]
    tile_frames: int
    overlap_frames: int
    cond_strength: float
    """The first frame's and each window's head (the previous window's tail) strength."""
    adain_factor: float
    decode_tiles_each_side: int
    decode_overlap: int

    def decode_tiles(self, width: int, height: int, spatial: int) -> dict[str, int]:
        """The tiled decode's arguments: the workflow's tiles, fewer where the latent is too
        small to cut (one tile: no overlap)."""
        across = min(self.decode_tiles_each_side, max(1, width // spatial // 4))
        down = min(self.decode_tiles_each_side, max(1, height // spatial // 4))
        overlap = self.decode_overlap if min(across, down) > 1 else 0
        return {
            "decode_horizontal_tiles": across,
            "decode_vertical_tiles": down,
            "decode_overlap": overlap,
        }


LTX_LONG = LongMode(
    sigmas=(1.0, 0.9937, 0.9875, 0.9812, 0.975, 0.9094, 0.725, 0.4219, 0.0),
    tile_frames=120,
    overlap_frames=32,
    cond_strength=0.5,
    adain_factor=0.25,
    decode_tiles_each_side=4,
    decode_overlap=3,
)
"""The workflow's first `LTXVLoopingSampler` and its tiled decode. The windows slide over any
length, so the longest video is prompt.json's limit."""


LTX_2B_FILE = "ltxv-2b-0.9.8-distilled.safetensors"
LTX_SINGLE_FILES = WeightSource(
    repo_id="Lightricks/LTX-Video",
    revision="8984fa25007f376c1a299016d0957a37a2f797bb",
    patterns=(LTX_2B_FILE,),
    size_gb=6.34,
)
"""Lightricks' own repository of single-file checkpoints (about 250 GB in all): only the
2B 0.9.8 distilled file is pulled. The commit is the one a public pinned download names; it
could not be confirmed offline here (docs/ENGINES.md, [L4])."""
LTX_2B_CONFIG = WeightSource(
    repo_id="Lightricks/LTX-Video-0.9.5",
    revision=None,
    patterns=SINGLE_FILE_CONFIG_FILES,
    size_gb=19.1,
)
"""The diffusers repo diffusers' own single-file loader picks for a 2B LTX checkpoint with
this VAE (`DIFFUSERS_DEFAULT_PIPELINE_PATHS["ltx-video-0.9.5"]`): its transformer and VAE
configs, T5 text encoder, tokenizer and scheduler. Unpinned: no commit could be confirmed
offline."""


LTX_UPSCALER = WeightSource(
    repo_id=LTX_SINGLE_FILES.repo_id,
    revision=LTX_SINGLE_FILES.revision,
    patterns=("ltxv-spatial-upscaler-0.9.8.safetensors",),
    size_gb=0.505,
)
"""The 0.9.8 spatial upscaler both 0.9.8 distilled configs name, from the same repository."""
LTX_REFINE_TIMESTEPS = (1000, 909, 725, 421, 0)
"""diffusers' LTX-Video docs (0.9.7/0.9.8 distilled, "Upscaling"), run at `denoise_strength`
0.999: the last four, as Lightricks' configs refine on [0.9094, 0.725, 0.4219]."""


def ltx_multiscale(tone_map: float | None) -> Multiscale:
    return Multiscale(
        upsampler=LTX_UPSCALER,
        file=LTX_UPSCALER.patterns[0],
        refine_timesteps=LTX_REFINE_TIMESTEPS,
        refine_strength=0.999,
        tone_map=tone_map,
    )


def ltx_variant(name: str, repo: WeightSource, **extra: Any) -> Variant:
    return Variant(name=name, repo=repo, pipelines=LTX_PIPELINES, call=LTX_CALL, **extra)


def ltx_distilled(width: int, height: int, speed: Speed, variant: str = "13b-distilled") -> Profile:
    return Profile(
        variant=variant,
        steps=len(LTX_DISTILLED_TIMESTEPS),
        timesteps=LTX_DISTILLED_TIMESTEPS,
        guidance=1.0,
        guidance_rescale=0.7,
        width=width,
        height=height,
        speed=speed,
    )


LTX_VIDEO = ModelSpec(
    name="ltx-video",
    kinds=KINDS_BOTH,
    target="gpu.ltx_video:LTXVideoEngine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB",),
    gpu_memory_gib=48,
    description="LTX-Video 0.9.8 2B distilled (fast, low_vram), 13B distilled (balanced), "
    "0.9.7 13B dev (quality).",
    license="LTX-Video Open Weights License (LTXV-OWL; commercial use allowed under its terms)",
    license_url="https://huggingface.co/Lightricks/LTX-Video/blob/main/LICENSE",
    max_render_seconds=1800,
    family="ltx",
    variants={
        "2b-distilled": ltx_variant(
            "2b-distilled",
            LTX_SINGLE_FILES,
            max_frames=LTX_098_LONGEST,
            single_file=LTX_2B_FILE,
            config=LTX_2B_CONFIG,
            multiscale=ltx_multiscale(tone_map=None),  # the 2B config has no tone mapping
        ),
        "13b-distilled": ltx_variant(
            "13b-distilled",
            checkpoint(
                "Lightricks/LTX-Video-0.9.8-13B-distilled",
                "7c64400e1861cc0d7b98d570a1926d5408ec60cd",
                36,
            ),
            max_frames=LTX_098_LONGEST,
            multiscale=ltx_multiscale(tone_map=0.6),  # diffusers docs; the 13B config's 0.6
        ),
        "13b-dev": ltx_variant(
            "13b-dev",
            checkpoint(
                "Lightricks/LTX-Video-0.9.7-dev", "2101082f5eb5540770a2df43747feadb6f69b889", 36
            ),
        ),
    },
    profiles={
        "fast": ltx_distilled(768, 512, FAST_ATTENTION, "2b-distilled"),
        "balanced": ltx_distilled(1216, 704, cached(0.05)),
        "quality": Profile(
            variant="13b-dev",
            steps=30,
            guidance=5.0,
            guidance_rescale=0.7,
            width=1216,
            height=704,
            speed=COMPILED,
        ),
        "low_vram": ltx_distilled(768, 512, LOW_VRAM, "2b-distilled"),
    },
    temporal=8,
    grid=32,
    fps=30,
    allowed_fps=(24, 25, 30),
    max_frames=257,
    min_side=64,
    max_side=1280,
    max_pixels=1280 * 720,
    default_seconds=5.0,
    default_profile="fast",
    negative_prompt=LTX_NEGATIVE,
    attention="_native_efficient",  # LTX passes a text attention mask: flash-attn 2 refuses it
    first_block_cache=True,
)

WAN_PIPELINES = {"text_to_video": "WanPipeline", "image_to_video": "WanImageToVideoPipeline"}
WAN_NEGATIVE = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，"
    "低质量，JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，"
    "毁容的，形态畸形的肢体，手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
"""Wan's default negative prompt (`sample_neg_prompt` in the Wan2.2 configs), used by the
official code when a job gives none."""


def wan_profile(speed: Speed) -> Profile:
    return Profile(variant="ti2v-5b", steps=50, guidance=5.0, width=1280, height=704, speed=speed)


FASTWAN_TIMESTEPS = (1000, 757, 522)
"""FastVideo's `FastWan2_2_TI2V_5B_Config.dmd_denoising_steps` (fastvideo/configs/pipelines/
wan.py @2f3d4074): three steps, no classifier-free guidance."""

WAN22_TI2V_5B = ModelSpec(
    name="wan2.2-ti2v-5b",
    kinds=KINDS_BOTH,
    target="gpu.wan22:Wan22Engine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB", "L40S"),
    gpu_memory_gib=40,
    description="Wan2.2 TI2V-5B (Wan-AI): 1280x704 at 24 fps, text or image to video; "
    "FastVideo's 3-step DMD FastWan2.2 for fast.",
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
        # FastVideo's DMD-distilled TI2V-5B with dense attention: the fastest published recipe
        # whose weights load into diffusers' WanPipeline (its sparse-attention sibling needs
        # FastVideo's Video Sparse Attention kernels, which diffusers does not have).
        "fastwan-3step": Variant(
            name="fastwan-3step",
            repo=checkpoint("FastVideo/FastWan2.2-TI2V-5B-FullAttn-Diffusers", None, 34),
            pipelines=WAN_PIPELINES,
            dmd=True,
        ),
    },
    profiles={
        "fast": Profile(
            variant="fastwan-3step",
            steps=len(FASTWAN_TIMESTEPS),
            timesteps=FASTWAN_TIMESTEPS,
            guidance=1.0,
            width=1280,
            height=704,
            speed=FAST_ATTENTION,
        ),
        "balanced": wan_profile(cached(0.05)),
        "quality": wan_profile(COMPILED),
        "low_vram": wan_profile(LOW_VRAM),
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
    negative_prompt=WAN_NEGATIVE,
    attention="_native_cudnn",  # no attention mask in Wan: PyTorch's cuDNN attention, bf16
    first_block_cache=True,
    float32_modules=("vae",),
)

MOCHI_FILES = (
    "model_index.json",
    "*/config.json",
    "*/*_config.json",
    "text_encoder/*.safetensors",
    "text_encoder/*.safetensors.index.json",
    "transformer/*.bf16*.safetensors",
    "transformer/*.safetensors.index.bf16.json",
    "vae/*.bf16.safetensors",
    "tokenizer/*",
)
"""genmo/mochi-1-preview holds every weight twice (fp32 and bf16): only the bf16 copies (and
the text encoder, which has one) are pulled and loaded (`variant="bf16"`)."""


def mochi_profile(steps: int, speed: Speed) -> Profile:
    return Profile(variant="preview", steps=steps, guidance=4.5, width=848, height=480, speed=speed)


MOCHI = ModelSpec(
    name="mochi",
    kinds=KINDS_T2V,
    target="gpu.mochi:MochiEngine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB",),
    gpu_memory_gib=60,
    description="Mochi 1 preview (Genmo): 848x480 at 30 fps, text to video.",
    license="Apache-2.0",
    license_url="https://huggingface.co/genmo/mochi-1-preview",
    max_render_seconds=3600,
    family="mochi",
    variants={
        "preview": Variant(
            name="preview",
            repo=WeightSource(
                repo_id="genmo/mochi-1-preview",
                revision="14be5fcea23095ed330cb214647916a451e38b6e",
                patterns=MOCHI_FILES,
                size_gb=40,
            ),
            pipelines={"text_to_video": "MochiPipeline"},
            load={"variant": "bf16"},
        ),
    },
    profiles={
        "fast": mochi_profile(64, Speed(cache_threshold=0.08, vae_tiling=True)),
        "balanced": mochi_profile(64, Speed(cache_threshold=0.05, vae_tiling=True)),
        "quality": mochi_profile(64, Speed(vae_tiling=True)),
        "low_vram": mochi_profile(64, LOW_VRAM),
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
    attention=None,  # Mochi's attention processor calls PyTorch SDPA itself, not the dispatcher
    first_block_cache=True,
)

HY15_T2V = {"text_to_video": "HunyuanVideo15Pipeline"}
HY15_I2V = {"image_to_video": "HunyuanVideo15ImageToVideoPipeline"}


def hy15_variant(
    task: str, revision: str | None, pipelines: dict[str, str], steps: int | None = None
) -> Variant:
    repo = f"hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-{task}"
    return Variant(name=task, repo=checkpoint(repo, revision, 35), pipelines=pipelines, steps=steps)


def hy15_profile(
    variant: str, size: tuple[int, int], speed: Speed, guidance: float = 6.0
) -> Profile:
    """50 steps: the makers' table for every checkpoint but the step-distilled one ("the cfg
    distilled model ... must use 50 steps"); guidance 6, or 1 for the distilled ones."""
    return Profile(
        variant=variant, steps=50, guidance=guidance, width=size[0], height=size[1], speed=speed
    )


HUNYUANVIDEO_15 = ModelSpec(
    name="hunyuanvideo-1.5",
    kinds=KINDS_BOTH,
    target="gpu.hunyuan15:HunyuanVideo15Engine",
    gpu="H100",
    gpu_fallbacks=("A100-80GB",),
    gpu_memory_gib=60,
    description="HunyuanVideo 1.5 (Tencent): 480p distilled (fast), 480p (balanced, low_vram) "
    "and 720p (quality).",
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
        # The makers' distilled checkpoints for `fast`: CFG-distilled text-to-video (guidance 1,
        # still 50 steps) and the 480p image-to-video step-distilled one (guidance 1, 12 steps).
        "480p-distilled:text_to_video": hy15_variant("480p_t2v_distilled", None, HY15_T2V),
        "480p-distilled:image_to_video": hy15_variant(
            "480p_i2v_step_distilled", "854c04a4c8a53d990b418c7478f0802c0fc8c726", HY15_I2V, 12
        ),
    },
    profiles={
        "fast": hy15_profile("480p-distilled", (848, 480), FAST_ATTENTION, guidance=1.0),
        "balanced": hy15_profile("480p", (848, 480), FAST_ATTENTION),
        "quality": hy15_profile("720p", (1280, 720), COMPILED),
        "low_vram": hy15_profile("480p", (848, 480), LOW_VRAM),
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
    attention="_native_efficient",  # HunyuanVideo 1.5 passes attention masks
)

MODELS: dict[str, ModelSpec] = {
    m.name: m for m in (LTX_VIDEO, WAN22_TI2V_5B, MOCHI, HUNYUANVIDEO_15)
}
