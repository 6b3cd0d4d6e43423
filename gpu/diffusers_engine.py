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
  features where the device supports them (CUDA; each outcome recorded in settings.speed),
  reports denoising steps through `progress`, and yields the decoded frames one by one.

torch and diffusers are imported only inside this module and the family files.
"""

from __future__ import annotations

import gc
import inspect
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
from gpu.weights import Snapshot, default_cache_dir, local_snapshot

log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class DiffusersPlan(RenderPlan):
    """A diffusers render: which checkpoint and pipeline, the recipe, and the speed record."""

    engine: str
    profile_name: str
    profile: Profile
    variant: Variant
    snapshot: Snapshot
    steps: int
    guidance: float
    device: str
    speed: dict[str, str]
    """Each speed feature's outcome; `render` records it here, and status.json shows it live."""
    image: Image.Image | None
    """The first frame for image-to-video, already at the plan's size."""

    @property
    def pipeline(self) -> str:
        return self.variant.pipelines[self.request.kind]

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "profile": self.profile_name,
            "model": self.variant.repo.repo_id,
            "weights": self.snapshot.commit,
            "variant": self.variant.name,
            "pipeline": self.pipeline,
            "steps": self.steps,
            "guidance": self.guidance,
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
    ) -> None:
        self.name = self.spec.name
        self._cache_dir = cache_dir
        self._device_override = device
        self.device = "cpu"
        self.dtype: Any = None
        self._pipes: dict[tuple[str, str], Any] = {}
        self._loaded_variant: str | None = None
        self._applied: dict[str, Any] = {}

    # ---- load -----------------------------------------------------------------------------
    def load(self) -> None:
        """Pick the device and dtype; checkpoints load on first use of each profile."""
        import torch

        self.device = self._device_override or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32

    @property
    def cache_dir(self) -> str | Path | None:
        return self._cache_dir if self._cache_dir is not None else default_cache_dir()

    # ---- check_inputs ---------------------------------------------------------------------
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
        snapshot = local_snapshot(variant.repo, self.cache_dir, spec.name, profile_name)

        adjustments: list[str] = []
        fps = self._fps(request, adjustments)
        num_frames = self._frames(request, fps, adjustments)
        image = None
        if request.kind == "image_to_video":
            if request.image is None:
                raise InputError(f"{spec.name} needs an image for an image-to-video job")
            image = request.image
        width, height = self._size(request, profile, image, adjustments)
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
            steps=request.steps or profile.steps,
            guidance=request.guidance if request.guidance is not None else profile.guidance,
            device=self.device,
            speed=self._speed_plan(profile.speed),
            image=image,
        )

    def _fps(self, request: RenderRequest, adjustments: list[str]) -> int:
        spec = self.spec
        if request.fps is None or request.fps in spec.allowed_fps:
            return request.fps or spec.fps
        adjustments.append(
            f"fps {request.fps} changed to {spec.fps}: {spec.name} renders at "
            f"{', '.join(map(str, spec.allowed_fps))} fps"
        )
        return spec.fps

    def _frames(self, request: RenderRequest, fps: int, adjustments: list[str]) -> int:
        spec = self.spec
        seconds = request.duration_seconds or spec.default_seconds
        num_frames = spec.frames_for(seconds, fps)
        if num_frames > spec.max_frames:
            longest = spec.max_frames / fps
            raise InputError(
                f"duration_seconds={seconds:g} is {seconds * fps:.0f} frames at {fps} fps, past "
                f"{spec.name}'s limit of {spec.max_frames} frames ({longest:.2f}s): ask for "
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
    ) -> tuple[int, int]:
        spec = self.spec
        asked = request.width is not None or request.height is not None
        if request.width and request.height:
            width, height = request.width, request.height
        else:
            if image is not None:
                aspect = image.size[0] / image.size[1]
            else:
                aspect = profile.width / profile.height
            area = profile.width * profile.height
            if request.width:
                width, height = request.width, round(request.width / aspect)
            elif request.height:
                width, height = round(request.height * aspect), request.height
            else:
                height = round((area / aspect) ** 0.5)
                width = round(height * aspect)
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
        if snapped != (width, height) and asked:
            adjustments.append(
                f"size {width}x{height} snapped to {snapped[0]}x{snapped[1]}: {spec.name} needs "
                f"sides that are multiples of {spec.grid}"
            )
        return snapped

    def _speed_plan(self, speed: Speed) -> dict[str, str]:
        wanted = {
            "attention": speed.attention,
            "cache": speed.cache and f"{speed.cache} (threshold {speed.cache_threshold})",
            "compile": "compile_repeated_blocks" if speed.compile else None,
            "fp8_storage": "layerwise casting float8_e4m3fn -> bfloat16"
            if speed.fp8_storage
            else None,
            "vae_tiling": "on" if speed.vae_tiling else None,
        }
        wanted = {k: v for k, v in wanted.items() if v}
        if not self.device.startswith("cuda"):
            return {k: f"skipped on {self.device} (needs CUDA): {v}" for k, v in wanted.items()}
        return {k: f"pending: {v}" for k, v in wanted.items()}

    # ---- render ---------------------------------------------------------------------------
    def render(self, plan: DiffusersPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        import torch

        pipe = self.pipeline(plan.variant, plan.snapshot, plan.request.kind)
        if self.device.startswith("cuda"):
            self._apply_speed(pipe, plan.profile.speed, plan.speed)
        steps = plan.steps
        total = steps + 1  # the denoising steps, then the VAE decode

        def on_step_end(_pipe: Any, index: int, _timestep: Any, kwargs: dict) -> dict:
            if progress:
                progress(index + 1, total)
            return {}

        generator = torch.Generator(device="cpu").manual_seed(plan.seed)
        kwargs = self.call_kwargs(plan, pipe)
        kwargs.update(
            num_frames=plan.num_frames,
            num_inference_steps=steps,
            generator=generator,
            output_type="np",
        )
        if self.takes_step_callback:
            kwargs["callback_on_step_end"] = on_step_end
            with torch.inference_mode():
                video = pipe(**kwargs).frames[0]
        else:  # no step callback in this pipeline: count scheduler steps instead
            with torch.inference_mode(), _counting_steps(pipe.scheduler, progress, total):
                video = pipe(**kwargs).frames[0]
        if progress:
            progress(total, total)
        for frame in video:
            yield _to_uint8(frame)

    takes_step_callback = True

    def call_kwargs(self, plan: DiffusersPlan, pipe: Any) -> dict[str, Any]:
        """The pipeline-call arguments beyond frames/steps/seed; families add their own."""
        kwargs: dict[str, Any] = {
            "prompt": plan.request.prompt,
            "negative_prompt": plan.request.negative_prompt,
            "width": plan.width,
            "height": plan.height,
            "guidance_scale": plan.guidance,
            **plan.variant.call,
        }
        if plan.image is not None:
            kwargs["image"] = plan.image
        return kwargs

    def pipeline(self, variant: Variant, snapshot: Snapshot, kind: str) -> Any:
        """The pipeline for `variant` and `kind`, loaded offline once; one checkpoint in memory."""
        import diffusers

        key = (variant.name, kind)
        if key in self._pipes:
            return self._pipes[key]
        if self._loaded_variant != variant.name:
            self._unload()
        cls = getattr(diffusers, variant.pipelines[kind])
        sibling = next((p for (v, _), p in self._pipes.items() if v == variant.name), None)
        if sibling is not None:
            pipe = _share_components(cls, sibling)
        else:
            log.info("loading %s from %s", variant.repo.repo_id, snapshot.path)
            pipe = cls.from_pretrained(str(snapshot.path), dtype=self.dtype, local_files_only=True)
            pipe.to(self.device)
            self.check_pipeline(pipe)
        pipe.set_progress_bar_config(disable=True)
        self._pipes[key] = pipe
        self._loaded_variant = variant.name
        return pipe

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
        self._loaded_variant = None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def _apply_speed(self, pipe: Any, speed: Speed, record: dict[str, str]) -> None:
        """Apply the profile's speed features to the loaded transformer; record each outcome."""
        import torch

        transformer = pipe.transformer
        if speed.attention and "attention" in record:
            record["attention"] = _attempt(
                lambda: transformer.set_attention_backend(speed.attention), speed.attention
            )
        if self._applied.get("cache") != (speed.cache, speed.cache_threshold):
            if self._applied.get("cache"):
                transformer.disable_cache()
            if speed.cache:
                record["cache"] = _attempt(
                    lambda: transformer.enable_cache(_cache_config(speed)),
                    f"{speed.cache} threshold {speed.cache_threshold}",
                )
            self._applied["cache"] = (speed.cache, speed.cache_threshold)
        if speed.fp8_storage and not self._applied.get("fp8"):
            record["fp8_storage"] = _attempt(
                lambda: transformer.enable_layerwise_casting(
                    storage_dtype=torch.float8_e4m3fn, compute_dtype=torch.bfloat16
                ),
                "float8_e4m3fn storage",
            )
            self._applied["fp8"] = True
        if speed.compile and not self._applied.get("compile"):
            record["compile"] = _attempt(
                lambda: transformer.compile_repeated_blocks(fullgraph=True),
                "compile_repeated_blocks",
            )
            self._applied["compile"] = True
        if speed.vae_tiling:
            record["vae_tiling"] = _attempt(pipe.vae.enable_tiling, "on")
        elif hasattr(pipe.vae, "disable_tiling"):
            pipe.vae.disable_tiling()


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


@contextmanager
def _counting_steps(scheduler: Any, progress: Progress | None, total: int) -> Iterator[None]:
    """Report progress after each `scheduler.step` of one pipeline call."""
    original = scheduler.step
    done = 0

    def step(*args: Any, **kwargs: Any) -> Any:
        nonlocal done
        out = original(*args, **kwargs)
        done += 1
        if progress:
            progress(min(done, total - 1), total)
        return out

    scheduler.step = step
    try:
        yield
    finally:
        del scheduler.step  # back to the class method


def _cache_config(speed: Speed) -> Any:
    from diffusers import FirstBlockCacheConfig, MagCacheConfig

    if speed.cache == "first_block":
        return FirstBlockCacheConfig(threshold=speed.cache_threshold or 0.05)
    if speed.cache == "mag":
        return MagCacheConfig(threshold=speed.cache_threshold or 0.06)
    raise EngineError(f"unknown cache {speed.cache!r} in gpu/diffusers_models.py")


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
