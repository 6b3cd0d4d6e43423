"""The code path every diffusers video engine shares: plan, load offline, speed features, render.

A family file (`gpu/ltx_video.py`, `gpu/wan22.py`, ...) names its `ModelSpec` and says how to call
its pipelines (`call_kwargs`); everything else is here, written once:

- `check_inputs` turns a request into an exact plan by the model's rules (frame count
  `temporal*n + 1`, sides on the size grid, fps the checkpoint expects) before any compute.
  Every change to what was asked is written into `plan.adjustments` (status.json and the
  notification show them); a request past the model's limits is refused with `InputError`.
  The weights are resolved offline here too, so a missing model fails at once. The plan is a
  typed `DiffusersPlan`; status.json's `settings` is its `describe()`.
- `render` loads the checkpoint from the cache (`local_files_only`), applies the profile's speed
  features where the device and the model support them (each outcome recorded in
  settings.speed), reports denoising steps through `progress`, and yields the decoded frames.

A job's profile never changes the next job: what cannot be undone on a loaded transformer (fp8
weight storage rounds the weights; compiled blocks) is part of the key of the loaded pipeline,
so another setting loads the checkpoint afresh; what can be undone (cache hooks, attention
backend, VAE tiling) is undone before each job applies its own.

torch and diffusers are imported only inside this module and the family files.
"""

from __future__ import annotations

import gc
import inspect
import json
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from gpu.diffusers_models import ModelSpec, Profile, Speed, Variant
from gpu.engine import Progress, RenderPlan, RenderRequest
from gpu.errors import EngineError, InputError
from gpu.media import fit_cover
from gpu.weights import Snapshot, WeightSource, default_cache_dir, local_snapshot

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DiffusersPlan(RenderPlan):
    """A diffusers render: which checkpoint and pipeline, the recipe, and the speed record."""

    engine: str
    profile_name: str
    profile: Profile
    variant: Variant
    snapshot: Snapshot
    config_snapshot: Snapshot | None
    """Where a single-file checkpoint's diffusers config repo is (None: not single-file)."""
    upsampler_snapshot: Snapshot | None
    """Where the multiscale flow's upscaler is (None: one pass)."""
    steps: int
    timesteps: tuple[float, ...] | None
    guidance: float
    negative_prompt: str | None
    device: str
    speed: dict[str, str]
    """Each speed feature's outcome; `render` records it here, and status.json shows it live."""
    image: Image.Image | None
    """The first frame for image-to-video, already at the plan's size."""

    @property
    def pipeline(self) -> str:
        return self.variant.pipelines[self.request.kind]

    @property
    def schedule(self) -> str:
        first = f"timesteps {list(self.timesteps)}" if self.timesteps else "pipeline default"
        if self.variant.dmd:
            first += ", DMD sampling (clean latents re-noised each step)"
        multiscale = self.variant.multiscale
        return f"{first}; {multiscale.describe()}" if multiscale else first

    @property
    def denoise_steps(self) -> int:
        """Every denoising step the render runs (the refine pass's too)."""
        multiscale = self.variant.multiscale
        return self.steps + (multiscale.refine_steps if multiscale else 0)

    @property
    def passes(self) -> tuple[tuple[int, int], ...]:
        """The size of each denoising pass: the planned size, or the multiscale flow's two."""
        multiscale = self.variant.multiscale
        if multiscale is None:
            return ((self.width, self.height),)
        width, height = multiscale.first_size(self.width, self.height, self.grid)
        return ((width, height), (2 * width, 2 * height))

    grid: int = 1
    """The model's size grid (the multiscale flow floors its first pass to it)."""

    def _negative_source(self) -> str:
        if self.negative_prompt is None:
            return "none" if self.guidance > 1 else "none (no guidance)"
        return "prompt.json" if self.request.negative_prompt else "model default"

    def _single_file(self) -> dict[str, str]:
        if self.config_snapshot is None:
            return {}
        config = self.config_snapshot
        return {
            "file": str(self.variant.single_file),
            "config": f"{config.repo.repo_id}@{config.commit}",
        }

    def _multiscale(self) -> dict[str, Any]:
        multiscale, snapshot = self.variant.multiscale, self.upsampler_snapshot
        if multiscale is None or snapshot is None:
            return {}
        (w1, h1), (w2, h2) = self.passes
        return {
            "multiscale": {
                "upsampler": f"{snapshot.repo.repo_id}/{multiscale.file}@{snapshot.commit}",
                "passes": [f"{w1}x{h1}", f"{w2}x{h2}"],
                "frames_resized_to": f"{self.width}x{self.height}",
            }
        }

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "profile": self.profile_name,
            "model": self.variant.repo.repo_id,
            "weights": self.snapshot.commit,
            **self._single_file(),
            **self._multiscale(),
            "variant": self.variant.name,
            "pipeline": self.pipeline,
            "steps": self.steps,
            "schedule": self.schedule,
            "guidance": self.guidance,
            "guidance_rescale": self.profile.guidance_rescale,
            "negative_prompt": self._negative_source(),
            "seed_from": "prompt.json" if self.request.seed is not None else "random",
            "device": self.device,
            "speed": self.speed,  # the same dict: outcomes recorded while rendering show too
            **super().describe(),
        }


class DiffusersVideoEngine:
    """Base of the diffusers engines; a subclass sets `spec` and may override `call_kwargs`."""

    spec: ModelSpec
    preview = False

    def __init__(
        self,
        cache_dir: str | Path | None = None,
        device: str | None = None,
        speed_on_cpu: bool = False,
    ) -> None:
        self.name = self.spec.name
        self._cache_dir = cache_dir
        self._device_override = device
        self._speed_on_cpu = speed_on_cpu
        """Also apply the features that run on CPU (cache, fp8 storage, VAE tiling): tests."""
        self.device = "cpu"
        self.dtype: Any = None
        self._pipes: dict[str, Any] = {}
        self._loaded: tuple[str, tuple[bool, bool]] | None = None
        """(variant, Speed.changes_modules) of the pipelines in `_pipes`."""
        self._load_outcomes: dict[str, str] = {}
        """What loading applied (fp8 storage, compile), recorded again on each job it serves."""
        self._applied: set[str] = set()
        """The undoable features the last job left on (the cache)."""
        self._stage_on_cpu = False

    # ---- load -----------------------------------------------------------------------------
    def load(self) -> None:
        """Pick the device and dtype; checkpoints load on first use of each profile."""
        import torch

        self.device = self._device_override or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32

    def warm(self, stage_on_cpu: bool = False) -> str:
        """Load the default profile's checkpoint now, so the first job does not (Modal's
        `@modal.enter`); returns what it did, for the log.

        `stage_on_cpu`: keep it in host memory, in the dtype of the engine's device (before a
        memory snapshot, which holds host memory only: the engine is built with the device it
        will have, `device="cuda"`). A later `warm()` moves a staged checkpoint onto the
        device, or, on a machine without that device (a `.local()` test), loads afresh. A
        default profile that rounds or compiles the transformer (fp8 storage, compile) is
        never staged: those are applied on the device, after the snapshot."""
        import torch

        if not stage_on_cpu and self.device.startswith("cuda") and not torch.cuda.is_available():
            self._unload()
            self._device_override = None
            self.load()
        default = self.spec.profiles[self.spec.default_profile]
        if stage_on_cpu and any(default.speed.changes_modules):
            return f"{self.name}: not staged (its default profile changes modules on the GPU)"
        kind = "text_to_video" if "text_to_video" in self.spec.kinds else self.spec.kinds[0]
        plan = self.check_inputs(RenderRequest(kind=kind, prompt="warm-up"))
        if self._pipes:
            for pipe in self._pipes.values():
                pipe.to(self.device)
            return f"{self.name}: {plan.variant.repo.repo_id} moved to {self.device}"
        self._stage_on_cpu = stage_on_cpu
        try:
            self.pipeline(plan)
        finally:
            self._stage_on_cpu = False
        where = "host memory" if stage_on_cpu else self.device
        return f"{self.name}: {plan.variant.repo.repo_id} loaded to {where} ({self.dtype})"

    @property
    def cache_dir(self) -> str | Path | None:
        return self._cache_dir if self._cache_dir is not None else default_cache_dir()

    # ---- check_inputs ---------------------------------------------------------------------
    def longest_seconds(self, request: RenderRequest) -> float | None:
        """The longest clip this request's profile makes, for both the first clip and the
        image-to-video clips that continue it (handlers/long_clips.py); None for a request
        check_inputs refuses anyway."""
        spec = self.spec
        profile = request.profile or spec.default_profile
        if profile not in spec.profiles or request.kind not in spec.kinds:
            return None
        kinds = {request.kind, "image_to_video"} & set(spec.kinds)
        limit = min(spec.variant_for(profile, kind).max_frames or spec.max_frames for kind in kinds)
        frames = (limit - 1) // spec.temporal * spec.temporal + 1
        return frames / self._fps(request, [])

    def check_inputs(self, request: RenderRequest) -> DiffusersPlan:
        spec = self.spec
        if request.kind not in spec.kinds:
            raise InputError(
                f"{spec.name} does not make {request.kind} videos; it makes {', '.join(spec.kinds)}"
            )
        if not request.prompt:
            raise InputError(f'prompt.json needs a non-empty "prompt" for {spec.name}')
        profile_name = request.profile or spec.default_profile
        if profile_name not in spec.profiles:
            raise InputError(
                f"{spec.name} has no profile {profile_name!r}; use one of "
                f"{', '.join(spec.profiles)}"
            )
        profile = spec.profiles[profile_name]
        variant = spec.variant_for(profile_name, request.kind)
        snapshot = self._snapshot(variant.repo, profile_name)
        config = self._snapshot(variant.config, profile_name) if variant.config else None
        upsampler = variant.multiscale and self._snapshot(
            variant.multiscale.upsampler, profile_name
        )

        adjustments: list[str] = []
        fps = self._fps(request, adjustments)
        num_frames = self._frames(request, fps, variant.max_frames or spec.max_frames, adjustments)
        image = None
        if request.kind == "image_to_video":
            if request.image is None:
                raise InputError(f"{spec.name} needs an image for an image-to-video job")
            image = request.image
        width, height = self._size(request, profile, image, adjustments, snapshot)
        steps = request.steps or variant.steps or profile.steps
        timesteps = (
            profile.timesteps if profile.timesteps and steps == len(profile.timesteps) else None
        )
        guidance = request.guidance if request.guidance is not None else profile.guidance
        negative = request.negative_prompt or spec.negative_prompt if guidance > 1 else None
        if image is not None and image.size != (width, height):
            adjustments.append(
                f"image {image.size[0]}x{image.size[1]} scaled and centre-cropped to "
                f"{width}x{height}"
            )
            image = fit_cover(image, width, height)

        return DiffusersPlan(
            request=request,
            width=width,
            height=height,
            fps=fps,
            num_frames=num_frames,
            seed=request.seed if request.seed is not None else secrets.randbelow(2**32),
            adjustments=adjustments,
            engine=spec.name,
            profile_name=profile_name,
            profile=profile,
            variant=variant,
            snapshot=snapshot,
            config_snapshot=config,
            upsampler_snapshot=upsampler or None,
            grid=spec.grid,
            steps=steps,
            timesteps=timesteps,
            guidance=guidance,
            negative_prompt=negative,
            device=self.device,
            speed=self._speed_plan(profile.speed),
            image=image,
        )

    def _snapshot(self, repo: WeightSource, profile: str) -> Snapshot:
        """A repo on disk, offline (WeightsMissing with the fixing command if absent)."""
        return local_snapshot(repo, self.cache_dir, self.spec.name, profile)

    def _fps(self, request: RenderRequest, adjustments: list[str]) -> int:
        spec = self.spec
        if request.fps is None or request.fps in spec.allowed_fps:
            return request.fps or spec.fps
        adjustments.append(
            f"fps {request.fps} changed to {spec.fps}: {spec.name} renders at "
            f"{', '.join(map(str, spec.allowed_fps))} fps"
        )
        return spec.fps

    def _frames(self, request: RenderRequest, fps: int, limit: int, adjustments: list[str]) -> int:
        spec = self.spec
        seconds = request.duration_seconds or spec.default_seconds
        num_frames = spec.frames_for(seconds, fps)
        if num_frames > limit:
            longest = limit / fps
            raise InputError(
                f"duration_seconds={seconds:g} is {seconds * fps:.0f} frames at {fps} fps, past "
                f"{spec.name}'s limit of {limit} frames ({longest:.2f}s): ask for "
                f"{longest:.2f} seconds or less"
            )
        if abs(num_frames - seconds * fps) > 1e-6:
            adjustments.append(
                f"duration {seconds:g}s at {fps} fps = {seconds * fps:g} frames; {spec.name} "
                f"makes {spec.temporal}n+1 frames, so {num_frames} frames "
                f"({num_frames / fps:.3f}s)"
            )
        return num_frames

    def _size(
        self,
        request: RenderRequest,
        profile: Profile,
        image: Image.Image | None,
        adjustments: list[str],
        snapshot: Snapshot,
    ) -> tuple[int, int]:
        """The planned size: the profile's, the photo fitted into the profile's pixels, or what
        the job asked for on the grid. `snapshot` is for families whose checkpoint decides."""
        spec = self.spec
        asked = bool(request.width or request.height)
        if image is not None and (self.photo_decides_size or not asked):
            width, height, why = self._fit_photo(image, profile, snapshot)
            unused = " (width/height are not used for image-to-video)" if asked else ""
            adjustments.append(
                f"image {image.size[0]}x{image.size[1]} fitted to {width}x{height}: {why}{unused}"
            )
            return width, height
        if not asked:
            return profile.width, profile.height
        aspect = image.size[0] / image.size[1] if image else profile.width / profile.height
        if request.width and request.height:
            width, height = request.width, request.height
        elif request.width:
            width, height = request.width, round(request.width / aspect)
        else:
            width, height = round(request.height * aspect), request.height
        if max(width, height) > spec.max_side or width * height > spec.max_pixels:
            raise InputError(
                f"size {width}x{height} is past {spec.name}'s limit (longest side "
                f"{spec.max_side}, at most {spec.max_pixels:,} pixels): ask for "
                f"{profile.width}x{profile.height} or smaller"
            )
        if min(width, height) < spec.min_side:
            raise InputError(
                f"size {width}x{height} is below {spec.name}'s smallest side of {spec.min_side}"
            )
        snapped = spec.snap(width), spec.snap(height)
        if snapped[0] * snapped[1] > spec.max_pixels or max(snapped) > spec.max_side:
            snapped = width // spec.grid * spec.grid, height // spec.grid * spec.grid
        if snapped != (width, height):
            adjustments.append(
                f"size {width}x{height} snapped to {snapped[0]}x{snapped[1]}: {spec.name} needs "
                f"sides that are multiples of {spec.grid}"
            )
        return snapped

    photo_decides_size = False
    """True where the image-to-video pipeline sizes the video from the photo itself."""

    def _fit_photo(
        self, image: Image.Image, profile: Profile, snapshot: Snapshot
    ) -> tuple[int, int, str]:
        """The size a photo renders at without a requested size, and why (for adjustments)."""
        spec = self.spec
        width, height = spec.fit(image.size[0] / image.size[1], profile.width * profile.height)
        why = (
            f"the largest size on {spec.name}'s {spec.grid}-pixel grid at the image's aspect "
            f"within the {profile.width}x{profile.height} pixel budget"
        )
        return width, height, why

    def _speed_plan(self, speed: Speed) -> dict[str, str]:
        """What each asked-for feature will do on this device and model, before it runs."""
        spec = self.spec
        wanted = {
            "attention": speed.attention and (spec.attention or "native"),
            "cache": speed.cache_threshold and f"first_block (threshold {speed.cache_threshold})",
            "compile": speed.compile and "compile_repeated_blocks",
            "fp8_storage": speed.fp8_storage and "layerwise casting float8_e4m3fn",
            "vae_tiling": speed.vae_tiling and "on",
        }
        cpu_ok = {"cache", "fp8_storage", "vae_tiling"} if self._speed_on_cpu else set()
        plan: dict[str, str] = {}
        for name, what in wanted.items():
            if not what:
                continue
            if not self.device.startswith("cuda") and name not in cpu_ok:
                plan[name] = f"skipped on {self.device} (needs CUDA): {what}"
            elif name == "attention" and spec.attention is None:
                plan[name] = (
                    f"not applied: {spec.name}'s attention calls PyTorch SDPA directly, "
                    "not diffusers' backend dispatch"
                )
            elif name == "cache" and not spec.first_block_cache:
                plan[name] = f"not applied: diffusers has no First-Block Cache for {spec.name}"
            else:
                plan[name] = f"pending: {what}"
        return plan

    # ---- render ---------------------------------------------------------------------------
    def render(self, plan: DiffusersPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        import torch

        pipe = self.pipeline(plan)
        self._apply_speed(pipe, plan)
        total = plan.denoise_steps + 1  # the denoising steps, then the VAE decode

        generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        kwargs = self.call_kwargs(plan, pipe)
        kwargs.update(
            num_frames=plan.num_frames,
            num_inference_steps=plan.steps,
            generator=generator,
            output_type="np",
        )
        with torch.inference_mode():
            video = self.denoise(pipe, plan, kwargs, StepCounter(progress, total))
        if progress:
            progress(total, total)
        for frame in video:
            yield _to_uint8(frame)

    takes_step_callback = True

    def denoise(
        self, pipe: Any, plan: DiffusersPlan, kwargs: dict[str, Any], steps: StepCounter
    ) -> Any:
        """The frames of one clip (float, 0..1); a family with a multi-pass recipe overrides it."""
        return self.call(pipe, kwargs, steps).frames[0]

    def call(self, pipe: Any, kwargs: dict[str, Any], steps: StepCounter) -> Any:
        """One pipeline call, each denoising step counted."""
        if self.takes_step_callback:
            return pipe(**kwargs, callback_on_step_end=steps.on_step_end)
        with _counting_steps(pipe.scheduler, steps):  # no step callback in this pipeline
            return pipe(**kwargs)

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        """The pipeline-call arguments beyond frames/steps/seed; families add their own."""
        kwargs: dict[str, Any] = {
            "prompt": plan.request.prompt,
            "negative_prompt": plan.negative_prompt,
            "width": plan.width,
            "height": plan.height,
            "guidance_scale": plan.guidance,
            **plan.variant.call,
        }
        if plan.profile.guidance_rescale is not None:
            kwargs["guidance_rescale"] = plan.profile.guidance_rescale
        if plan.timesteps:
            kwargs["timesteps"] = list(plan.timesteps)
        if plan.image is not None:
            kwargs["image"] = plan.image
        return kwargs

    def pipeline(self, plan: DiffusersPlan) -> Any:
        """The pipeline for the plan's checkpoint, kind and module-changing speed settings.

        One checkpoint in memory: a different variant, or a different fp8/compile setting,
        unloads what is there and loads afresh from the cache (offline).
        """
        import diffusers

        variant, kind, speed = plan.variant, plan.request.kind, plan.profile.speed
        key = (variant.name, speed.changes_modules)
        if self._loaded != key:
            self._unload()
        if kind in self._pipes:
            return self._pipes[kind]
        cls = getattr(diffusers, variant.pipelines[kind])
        sibling = next(iter(self._pipes.values()), None)
        pipe = _share_components(cls, sibling) if sibling is not None else self._load(cls, plan)
        pipe.set_progress_bar_config(disable=True)
        self._pipes[kind] = pipe
        self._loaded = key
        return pipe

    def _load(self, cls: Any, plan: DiffusersPlan) -> Any:
        """Load the checkpoint, then apply what changes its modules (fp8 storage, compile)."""
        import torch

        pipe = self._from_cache(cls, plan)
        pipe.to("cpu" if self._stage_on_cpu else self.device)
        self.check_pipeline(pipe)
        transformer = pipe.transformer
        outcomes = {}
        if plan.speed.get("fp8_storage", "").startswith("pending"):
            outcomes["fp8_storage"] = _attempt(
                lambda: transformer.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=self.dtype
                ),
                f"float8_e4m3fn storage, {str(self.dtype).removeprefix('torch.')} compute",
            )
        if plan.speed.get("compile", "").startswith("pending"):
            outcomes["compile"] = _attempt(
                lambda: transformer.compile_repeated_blocks(fullgraph=True),
                "compile_repeated_blocks",
            )
        self._load_outcomes = outcomes
        return pipe

    def _from_cache(self, cls: Any, plan: DiffusersPlan) -> Any:
        import torch

        variant = plan.variant
        log.info("loading %s from %s", variant.repo.repo_id, plan.snapshot.path)
        dtype: Any = self.dtype
        if self.spec.float32_modules:
            dtype = {
                "default": self.dtype,
                **dict.fromkeys(self.spec.float32_modules, torch.float32),
            }
        if variant.single_file and plan.config_snapshot is not None:
            return cls.from_pretrained(
                str(plan.config_snapshot.path),
                dtype=dtype,
                local_files_only=True,
                **_single_file_models(plan.snapshot.path / variant.single_file, plan, dtype),
                **variant.load,
            )
        return cls.from_pretrained(
            str(plan.snapshot.path), dtype=dtype, local_files_only=True, **variant.load
        )

    def check_pipeline(self, pipe: Any) -> None:
        """Refuse a checkpoint whose VAE disagrees with the frame rule or grid in the table."""
        names = ("vae_scale_factor_temporal", "vae_temporal_compression_ratio")
        names += ("vae_temporal_scale_factor",)
        temporal = next((getattr(pipe, n) for n in names if getattr(pipe, n, None)), None)
        if temporal and temporal != self.spec.temporal:
            raise EngineError(
                f"{self.spec.name}: the checkpoint compresses time by {temporal}, the table says "
                f"{self.spec.temporal}; fix gpu/diffusers_models.py"
            )

    def _unload(self) -> None:
        if not self._pipes:
            return
        self._pipes.clear()
        self._applied.clear()
        self._load_outcomes = {}
        self._loaded = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _apply_speed(self, pipe: Any, plan: DiffusersPlan) -> None:
        """Undo what the last job left on, apply this job's features, record each outcome."""
        from diffusers import FirstBlockCacheConfig

        transformer, record, speed = pipe.transformer, plan.speed, plan.profile.speed
        if "cache" in self._applied:
            transformer.disable_cache()
        self._applied.clear()
        if hasattr(pipe.vae, "disable_tiling"):
            pipe.vae.disable_tiling()
        for name, outcome in self._load_outcomes.items():
            record[name] = outcome  # applied when this pipeline was loaded, for these settings
        pending = {k for k, v in record.items() if v.startswith("pending")}
        if self.spec.attention and self.device.startswith("cuda"):
            # Always set: diffusers keeps the last backend set by any model as a process-wide
            # default, so a job that asks for none still gets "native", not a leftover.
            backend = str(self.spec.attention) if "attention" in pending else "native"
            outcome = _attempt(lambda: transformer.set_attention_backend(backend), backend)
            if "attention" in pending:
                record["attention"] = outcome
        if "cache" in pending:
            config = FirstBlockCacheConfig(threshold=float(speed.cache_threshold or 0))
            record["cache"] = _attempt(
                lambda: transformer.enable_cache(config),
                f"first_block threshold {speed.cache_threshold}",
            )
            if record["cache"].startswith("on"):
                self._applied.add("cache")
        if "vae_tiling" in pending:
            record["vae_tiling"] = _attempt(pipe.vae.enable_tiling, "on")


def _single_file_models(path: Path, plan: DiffusersPlan, dtype: Any) -> dict[str, Any]:
    """The models a single file holds (transformer, VAE), each by its class's
    `from_single_file`: diffusers' own converter turns the makers' key names into its own,
    with the config of the same component in the config repo. The file is read once; each
    converter takes its component's keys. (The pipeline's own `from_single_file` is not used:
    it looks for the text encoder's weights under diffusers' file names, not transformers'
    `model*.safetensors`, and refuses to load it.)"""
    import diffusers
    from safetensors.torch import load_file

    config = plan.config_snapshot.path if plan.config_snapshot else path.parent
    index = json.loads((config / "model_index.json").read_text())
    state = load_file(str(path))
    models = {}
    for name in ("transformer", "vae"):
        model_cls = getattr(diffusers, index[name][1])
        models[name] = model_cls.from_single_file(
            state, config=str(config), subfolder=name, dtype=dtype, local_files_only=True
        )
    return models


def _share_components(cls: Any, sibling: Any) -> Any:
    """`cls` built on the modules `sibling` already holds: no copy, no dtype cast.

    (`from_pipe` casts every shared module to one dtype, which would undo the float32 islands
    `from_pretrained` keeps in bfloat16 models and touch the sibling's modules too.)
    """
    params = inspect.signature(cls.__init__).parameters
    kwargs = {k: v for k, v in sibling.components.items() if k in params}
    for key in params:
        if key not in kwargs and key in sibling.config and not key.startswith("_"):
            kwargs[key] = sibling.config[key]
    return cls(**kwargs)


class StepCounter:
    """Progress over every denoising step of a render, across its pipeline calls."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, total, 0

    def step(self) -> None:
        self.done += 1
        if self.progress:
            self.progress(min(self.done, self.total - 1), self.total)

    def on_step_end(self, _pipe: Any, _index: int, _timestep: Any, _kwargs: dict) -> dict:
        self.step()
        return {}


@contextmanager
def _counting_steps(scheduler: Any, steps: StepCounter) -> Iterator[None]:
    """Count each `scheduler.step` of one pipeline call."""
    original = scheduler.step

    def step(*args: Any, **kwargs: Any) -> Any:
        out = original(*args, **kwargs)
        steps.step()
        return out

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step  # back to the class method


def _attempt(apply: Any, what: str) -> str:
    """Run one speed feature; a feature the machine lacks is recorded, never fatal."""
    try:
        apply()
    except Exception as err:  # kernels missing, unsupported model, old GPU: all non-fatal
        log.warning("speed feature %s unavailable: %s", what, err)
        return f"unavailable ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return f"on: {what}"


def _to_uint8(frame: Any) -> np.ndarray:
    array = np.asarray(frame, dtype=np.float32)
    return (array.clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
