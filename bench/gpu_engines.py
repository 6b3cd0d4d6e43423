"""Seconds of GPU compute per second of video, per engine and profile, at full size.

Each engine's transformer and VAE are built at their published sizes with random weights (no
download: random weights cost the same FLOPs as trained ones) in bfloat16 on CUDA, the profile's
speed features are applied by the engine's own code, and one 5 s clip per profile runs through
the real diffusers pipeline. Text encoders are skipped (random prompt embeddings of the right
shape): their cost is one forward pass per job, small next to the denoising loop.

Reported per profile: `denoise_s` (start to last step), `decode_s` (last step to frames in host
memory: VAE decode + post-processing), `compute_per_video_s` = total / video seconds (< 1.0 is
faster than real time). The anchor: LTX-Video's published claim of 5 s of 768x512 video in about
2 s on an H100 with the distilled model (0.4 s per video second).

    python bench/gpu_engines.py [--engine ltx-video] [--profile fast] [--warmup 1]
    python bench/gpu_engines.py --tiny     # the tiny test checkpoints, any device: checks the code

Exits with code 2 and says so when no CUDA device is present (unless --tiny).
"""

from __future__ import annotations

import argparse
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
    "ltx-video:2b-distilled": {
        "transformer": ("LTXVideoTransformer3DModel", {}),
        "vae": ("AutoencoderKLLTXVideo", {"timestep_conditioning": True}),
    },
    "ltx-video:13b": {
        "transformer": (
            "LTXVideoTransformer3DModel",
            {"num_layers": 48, "attention_head_dim": 128, "cross_attention_dim": 4096},
        ),
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


def build_full(engine: str, variant: str, dtype: Any) -> Any:
    import diffusers
    import torch

    key = engine if engine in FULL else f"{engine}:{'13b' if '13b' in variant else variant}"
    parts = FULL[key]
    torch.set_default_dtype(dtype)
    with torch.device("cuda"):
        modules = {name: getattr(diffusers, cls)(**kwargs) for name, (cls, kwargs) in parts.items()}
    torch.set_default_dtype(torch.float32)
    spec = MODELS[engine]
    pipe_cls = getattr(
        diffusers, spec.variants[_variant_key(spec, variant)].pipelines["text_to_video"]
    )
    extra: dict[str, Any] = {}
    if spec.family == "wan":
        extra["expand_timesteps"] = True
    if spec.family == "hunyuanvideo15":
        extra.update(
            text_encoder_2=None,
            tokenizer_2=None,
            guider=diffusers.ClassifierFreeGuidance(guidance_scale=6.0),
        )
    return pipe_cls(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        text_encoder=None,
        tokenizer=None,
        **modules,
        **extra,
    )


def _variant_key(spec: Any, variant: str) -> str:
    return next(k for k, v in spec.variants.items() if v.name == variant)


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


def run_profile(engine_name: str, profile_name: str, args: argparse.Namespace) -> dict:
    import importlib

    import torch

    from gpu.diffusers_engine import _counting_steps
    from gpu.registry import get_spec

    spec = MODELS[engine_name]
    profile = spec.profiles[profile_name]
    variant = spec.variant_for(profile_name, "text_to_video")
    target = get_spec(engine_name).target
    module, _, attr = target.partition(":")
    engine = getattr(importlib.import_module(module), attr)(device=args.device)
    engine.load()
    if args.tiny:
        from tests.tiny_models import BUILDERS

        torch.manual_seed(0)
        pipe = BUILDERS[engine_name][0]().to(args.device)
        width, height, fps, frames = 96, 64, spec.fps, spec.frames_for(0.4, spec.fps)
        steps = 2
    else:
        pipe = build_full(engine_name, variant.name, engine.dtype)
        width, height, fps = profile.width, profile.height, spec.fps
        frames, steps = spec.frames_for(CLIP_SECONDS, fps), profile.steps
    pipe.set_progress_bar_config(disable=True)
    speed: dict[str, str] = engine._speed_plan(profile.speed)
    if args.device == "cuda":
        engine._apply_speed(pipe, profile.speed, speed)
    kwargs = embeddings(pipe, spec.family, profile.guidance, args.device, engine.dtype)
    kwargs.update(
        width=width,
        height=height,
        num_frames=frames,
        num_inference_steps=steps,
        output_type="np",
        **variant.call,
    )
    if spec.family == "ltx":
        kwargs["frame_rate"] = fps
    if spec.family != "hunyuanvideo15":
        kwargs["guidance_scale"] = profile.guidance

    def sync() -> None:
        if args.device == "cuda":
            torch.cuda.synchronize()

    marks: list[float] = []

    def on_step(done: int, total: int) -> None:
        sync()
        marks.append(time.perf_counter())

    def once() -> tuple[float, float]:
        marks.clear()
        sync()
        started = time.perf_counter()
        with torch.inference_mode(), _counting_steps(pipe.scheduler, on_step, steps + 1):
            pipe(**kwargs, generator=torch.Generator("cpu").manual_seed(0))
        sync()
        ended = time.perf_counter()
        return marks[-1] - started, ended - marks[-1]

    for _ in range(args.warmup):
        once()
    denoise, decode = once()
    video_seconds = frames / fps
    return {
        "bench": "gpu_engines",
        "device": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
        "engine": engine_name,
        "profile": profile_name,
        "variant": variant.name,
        "tiny": args.tiny,
        "width": width,
        "height": height,
        "frames": frames,
        "fps": fps,
        "steps": steps,
        "denoise_s": round(denoise, 3),
        "decode_s": round(decode, 3),
        "compute_per_video_s": round((denoise + decode) / video_seconds, 3),
        "speed": speed,
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
        for profile_name in args.profile or [p for p in MODELS[engine_name].profiles]:
            if profile_name not in MODELS[engine_name].profiles:
                continue
            print(json.dumps(run_profile(engine_name, profile_name, args)), flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
