"""Seconds of GPU compute per clip and per second of video, per engine and profile, full size.

Each engine's transformer and VAE are built at their published sizes with random weights (no
download: random weights cost the same FLOPs as trained ones) in bfloat16 on CUDA (the VAE in
float32 where the recipe says so), and one 5 s clip per profile runs through the engine's own
code: its plan (size, frames, steps, the distilled timesteps), its pipeline-call arguments
(guidance, rescale, decode timestep, frame rate), its speed features and its progress reports.
Only the text encoders are skipped (random prompt embeddings of the right shape): their cost is
one forward pass per job, small next to the denoising loop.

Reported per profile, one JSON line: `denoise_s` (start to last step), `decode_s` (last step to
frames in host memory), `clip_s` (both), `compute_per_video_s` = clip_s / video seconds (< 1.0
is faster than real time), `peak_gpu_gb`, and `speed` (what each feature did). Anchors, on one
H100/H200: LTX-Video distilled, 121 frames at 768x512 in about 2 s (Lightricks' claim);
FastWan2.2-TI2V-5B, 5 s of 720p in 16 s on an H200 (its authors').

    python bench/gpu_engines.py [--engine ltx-video] [--profile fast] [--warmup 1]
    python bench/gpu_engines.py --tiny     # the tiny test checkpoints on CPU: checks the code

Exits with code 2 and says so when no CUDA device is present (unless --tiny).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gpu.diffusers_models import MODELS

CLIP_SECONDS = 5.0

# Published architecture sizes (transformer and VAE constructor arguments; class defaults where
# the published config equals them). Sequence lengths are the pipelines' max_sequence_length.
FULL: dict[str, dict[str, Any]] = {
    "ltx-video": {
        "transformer": (
            "LTXVideoTransformer3DModel",
            {"num_layers": 48, "attention_head_dim": 128, "cross_attention_dim": 4096},
        ),
        "vae": ("AutoencoderKLLTXVideo", {"timestep_conditioning": True}),
    },
    "ltx-video:2b-distilled": {
        "transformer": ("LTXVideoTransformer3DModel", {}),  # the class defaults are the 2B
        "vae": ("AutoencoderKLLTXVideo", {"timestep_conditioning": True}),
    },
    "wan2.2-ti2v-5b": {
        "transformer": (
            "WanTransformer3DModel",
            {
                "num_attention_heads": 24,
                "attention_head_dim": 128,
                "in_channels": 48,
                "out_channels": 48,
                "ffn_dim": 14336,
                "num_layers": 30,
            },
        ),
        "vae": (
            "AutoencoderKLWan",
            {
                "base_dim": 160,
                "decoder_base_dim": 256,
                "z_dim": 48,
                "is_residual": True,
                "in_channels": 12,
                "out_channels": 12,
                "patch_size": 2,
                "scale_factor_spatial": 16,
                "scale_factor_temporal": 4,
                "latents_mean": [0.0] * 48,
                "latents_std": [1.0] * 48,
            },
        ),
    },
    "mochi": {
        "transformer": ("MochiTransformer3DModel", {}),
        "vae": ("AutoencoderKLMochi", {}),
    },
    "hunyuanvideo-1.5": {
        "transformer": ("HunyuanVideo15Transformer3DModel", {"task_type": "t2v"}),
        "vae": ("AutoencoderKLHunyuanVideo15", {}),
    },
}
SEQ = {"ltx": 128, "wan": 512, "mochi": 256, "hunyuanvideo15": 1000}


def build_full(engine: str, pipe_name: str, dtype: Any, float32: tuple[str, ...]) -> Any:
    """The engine's pipeline at published sizes, random weights, without text encoders.
    `engine` may name a checkpoint (`ltx-video:2b-distilled`) whose sizes differ."""
    import diffusers
    import torch

    sizes = FULL.get(engine) or FULL[engine.partition(":")[0]]
    engine = engine.partition(":")[0]
    torch.set_default_dtype(dtype)
    with torch.device("cuda"):
        modules = {name: getattr(diffusers, c)(**kw) for name, (c, kw) in sizes.items()}
    torch.set_default_dtype(torch.float32)
    for name in float32:
        modules[name].to(torch.float32)
    spec = MODELS[engine]
    extra: dict[str, Any] = {}
    if spec.family == "wan":
        extra["expand_timesteps"] = True
    if spec.family == "hunyuanvideo15":
        extra.update(
            text_encoder_2=None,
            tokenizer_2=None,
            guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
        )
    return getattr(diffusers, pipe_name)(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        text_encoder=None,
        tokenizer=None,
        **modules,
        **extra,
    )


def embeddings(pipe: Any, family: str, guidance: float, device: str, dtype: Any) -> dict:
    """Random prompt embeddings shaped like the text encoders' outputs."""
    import torch

    config = pipe.transformer.config
    seq = SEQ[family] if device == "cuda" else 16
    out: dict[str, Any] = {}
    names = ["prompt_embeds"] + (["negative_prompt_embeds"] if guidance > 1 else [])
    if family == "hunyuanvideo15":
        names = ["prompt_embeds", "negative_prompt_embeds"]
    for name in names:
        dim = {
            "ltx": "caption_channels",
            "wan": "text_dim",
            "mochi": "text_embed_dim",
            "hunyuanvideo15": "text_embed_dim",
        }[family]
        out[name] = torch.randn(1, seq, config[dim], device=device, dtype=dtype)
        if family in ("ltx", "mochi"):
            mask = name.replace("embeds", "attention_mask")
            out[mask] = torch.ones(1, seq, device=device, dtype=torch.long)
        if family == "hunyuanvideo15":
            out[name.replace("embeds", "embeds_mask")] = torch.ones(
                1, seq, device=device, dtype=torch.long
            )
            out[name + "_2"] = torch.randn(
                1,
                256 if device == "cuda" else 8,
                config["text_embed_2_dim"],
                device=device,
                dtype=dtype,
            )
            out[name.replace("embeds", "embeds_mask") + "_2"] = torch.ones(
                1, out[name + "_2"].shape[1], device=device, dtype=torch.long
            )
    return out


def bench_engine(engine_name: str, args: argparse.Namespace) -> Any:
    """The engine itself, with random-weight (or tiny) checkpoints and prompt embeddings."""
    import torch

    from gpu.registry import get_spec
    from gpu.weights import Snapshot

    module, _, attr = get_spec(engine_name).target.partition(":")
    base = getattr(importlib.import_module(module), attr)
    spec = MODELS[engine_name]

    class Bench(base):
        def _snapshot(self, repo: Any, profile: str) -> Snapshot:
            return Snapshot(repo, Path("random-weights"))

        def _from_cache(self, cls: Any, plan: Any) -> Any:
            if args.tiny:
                from tests.tiny_models import BUILDERS

                torch.manual_seed(0)
                return BUILDERS[engine_name][0]()
            name = f"{engine_name}:{plan.variant.name}"
            return build_full(name, cls.__name__, self.dtype, spec.float32_modules)

        def upsampler(self, plan: Any) -> Any:  # LTX's multiscale flow: its latent upscaler
            from diffusers.pipelines.ltx.modeling_latent_upsampler import LTXLatentUpsamplerModel

            if args.tiny:
                from tests.tiny_models import tiny_ltx_upsampler

                torch.manual_seed(0)
                return tiny_ltx_upsampler()
            with torch.device("cuda"):
                return LTXLatentUpsamplerModel()  # the class defaults are the published sizes

        def call_kwargs(self, plan: Any, pipe: Any) -> dict[str, Any]:
            kwargs = super().call_kwargs(plan, pipe)
            kwargs.pop("prompt")
            kwargs.pop("negative_prompt", None)
            kwargs.update(embeddings(pipe, spec.family, plan.guidance, self.device, self.dtype))
            return kwargs

    engine = Bench(device=args.device)
    engine.load()
    return engine


def run_profile(engine: Any, profile_name: str, args: argparse.Namespace) -> dict:
    import torch

    from gpu.engine import RenderRequest

    spec = engine.spec
    extra = dict(width=96, height=64, duration_seconds=0.4, steps=2) if args.tiny else {}
    seconds = extra.pop("duration_seconds", CLIP_SECONDS)
    request = RenderRequest(
        kind="text_to_video",
        prompt="bench",
        profile=profile_name,
        duration_seconds=seconds,
        seed=0,
        **extra,
    )

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    def once() -> tuple[Any, float, float]:
        plan = engine.check_inputs(request)
        marks: dict[int, float] = {}

        def progress(done: int, total: int) -> None:
            sync()
            marks[done] = time.perf_counter()

        sync()
        started = time.perf_counter()
        frames = sum(1 for _ in engine.render(plan, progress))
        assert frames == plan.num_frames
        denoised = marks[plan.denoise_steps]
        return plan, denoised - started, marks[plan.denoise_steps + 1] - denoised

    for _ in range(args.warmup):
        once()
    if args.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    plan, denoise, decode = once()
    clip = denoise + decode
    return {
        "bench": "gpu_engines",
        "device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
        "engine": spec.name,
        "profile": profile_name,
        "variant": plan.variant.name,
        "pipeline": plan.pipeline,
        "tiny": args.tiny,
        "width": plan.width,
        "height": plan.height,
        "frames": plan.num_frames,
        "fps": plan.fps,
        "steps": plan.denoise_steps,
        "passes": [f"{w}x{h}" for w, h in plan.passes],
        "schedule": plan.schedule,
        "denoise_s": round(denoise, 3),
        "decode_s": round(decode, 3),
        "clip_s": round(clip, 3),
        "compute_per_video_s": round(clip / plan.duration_seconds, 3),
        "peak_gpu_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if args.device == "cuda"
        else None,
        "speed": plan.speed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", action="append", choices=list(MODELS))
    parser.add_argument("--profile", action="append")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (compile)")
    parser.add_argument("--tiny", action="store_true", help="tiny test checkpoints, any device")
    args = parser.parse_args()
    import torch

    if torch.cuda.is_available():
        args.device = "cuda"
    elif args.tiny:
        args.device = "cpu"
    else:
        print(
            "bench/gpu_engines.py needs a CUDA GPU: none is visible here, so no GPU figures were "
            "measured. Run it on a GPU machine (or --tiny to check the code path on CPU).",
            file=sys.stderr,
        )
        return 2
    for engine_name in args.engine or list(MODELS):
        engine = bench_engine(engine_name, args)
        for profile_name in args.profile or list(MODELS[engine_name].profiles):
            if profile_name not in MODELS[engine_name].profiles:
                continue
            print(json.dumps(run_profile(engine, profile_name, args)), flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
