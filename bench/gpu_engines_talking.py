"""Talking-head (InfiniteTalk) GPU seconds per second of 480p video, full size, random weights.

Builds every component at its published size (14B Wan I2V transformer + 2.5B audio adapter,
UMT5-XXL encoder, CLIP ViT-H/14, Wan VAE, wav2vec2-base) with random weights on one GPU, applies
each profile's own speed features exactly as the engine does (the fast profile: fp8 weight
storage and the fastest attention kernel that loads; low_vram: block offload), times each part
on the shapes a real render uses, and reports per profile:

    GPU seconds per second of video
      = (text + image + audio encoders
         + clips x (VAE encode of the condition + passes x transformer pass + VAE decode))
        / video seconds

where passes = steps x guidance branches (3, or 2 when text guidance is 1), clips from the same
plan the engine uses, and the peak GPU memory of that profile. TeaCache (balanced, low_vram) is
*not* credited: its skips depend on the weights, so the figure is an upper bound there. Random
weights cost the same compute as real ones. `--speakers 2` times the two-speaker passes
(both voices and the label routing). The goal for `fast` is 5 GPU seconds per video second
(docs/PERFORMANCE.md); the JSON says whether this run met it.

Run: `python bench/gpu_engines_talking.py [--seconds 5] [--profiles fast,balanced]`; it prints
one JSON line. `--tiny` runs the same path at a tiny size on the CPU (figures meaningless) so
tests can check it; without CUDA and without `--tiny` it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

GOAL_FAST_S_PER_S = 5.0
# (component, full-size config, tiny config)
T5 = {"vocab_size": 256384, "d_model": 4096, "d_kv": 64, "d_ff": 10240, "num_layers": 24,
      "num_heads": 64, "feed_forward_proj": "gated-gelu"}  # fmt: skip
T5_TINY = {"vocab_size": 64, "d_model": 16, "d_kv": 8, "d_ff": 32, "num_layers": 1,
           "num_heads": 2, "relative_attention_num_buckets": 8}  # fmt: skip
CLIP = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32,
        "num_attention_heads": 16, "image_size": 224, "patch_size": 14}  # fmt: skip
CLIP_TINY = {"hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 2,
             "num_attention_heads": 2, "image_size": 32, "patch_size": 16}  # fmt: skip
WAV2VEC_TINY = {"hidden_size": 8, "num_hidden_layers": 3, "num_attention_heads": 2,
                "intermediate_size": 16, "conv_dim": (8,) * 7, "num_conv_pos_embeddings": 16,
                "num_conv_pos_embedding_groups": 2}  # fmt: skip
VAE_TINY = {"base_dim": 8, "z_dim": 16, "dim_mult": [1, 1, 1, 1], "num_res_blocks": 1}
TRANSFORMER_TINY = {"num_attention_heads": 2, "attention_head_dim": 12, "ffn_dim": 32,
                    "num_layers": 2, "text_dim": 16, "freq_dim": 16, "image_dim": 8,
                    "added_kv_proj_dim": 24, "audio_layers": 3, "audio_dim": 8,
                    "audio_hidden_dim": 16, "audio_tokens": 4, "audio_context_dim": 8}  # fmt: skip


class Clock:
    """Times a call on the device (synchronising CUDA) and tracks its peak memory."""

    def __init__(self, device, repeat: int) -> None:
        import torch

        self.torch, self.device, self.repeat = torch, device, repeat
        self.cuda = device.type == "cuda"

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def time(self, fn, repeat: int | None = None) -> float:
        fn()  # warm-up
        self.sync()
        start = time.perf_counter()
        for _ in range(repeat or self.repeat):
            fn()
        self.sync()
        return (time.perf_counter() - start) / (repeat or self.repeat)

    def reset_peak(self) -> None:
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float:
        if self.cuda:
            return round(self.torch.cuda.max_memory_allocated() / 2**30, 2)
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # host RSS


def encoders_seconds(clock: Clock, tiny: bool, seconds: float) -> float:
    """Text (both prompts), image and audio encoders, once per job."""
    import torch
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModel,
        UMT5Config,
        UMT5EncoderModel,
        Wav2Vec2Config,
        Wav2Vec2Model,
    )

    dev, dtype = clock.device, torch.bfloat16 if clock.cuda else torch.float32
    t5 = UMT5EncoderModel(UMT5Config(**(T5_TINY if tiny else T5))).to(dev, dtype).eval()
    clip = CLIPVisionModel(CLIPVisionConfig(**(CLIP_TINY if tiny else CLIP))).to(dev, dtype)
    wav2vec = Wav2Vec2Model(Wav2Vec2Config(**(WAV2VEC_TINY if tiny else {}))).to(dev).eval()
    ids = torch.randint(0, t5.config.vocab_size, (2, 512), device=dev)
    size = clip.config.image_size
    pixels = torch.randn(1, 3, size, size, device=dev, dtype=dtype)
    wave = torch.randn(1, int(16000 * seconds), device=dev)
    with torch.no_grad():
        total = (
            clock.time(partial(t5, ids))
            + clock.time(partial(clip.eval(), pixel_values=pixels, output_hidden_states=True))
            + clock.time(partial(wav2vec, wave))
        )
    del t5, clip, wav2vec
    if clock.cuda:
        torch.cuda.empty_cache()
    return total


def build_transformer(profile, clock: Clock, tiny: bool):
    """The transformer with random weights, placed as the engine places it for `profile`."""
    import torch

    from gpu.infinitetalk import accel
    from gpu.infinitetalk.model import I2V_14B_CONFIG, InfiniteTalkTransformer

    config = {**I2V_14B_CONFIG, **(TRANSFORMER_TINY if tiny else {})}
    dtype = torch.bfloat16 if clock.cuda else torch.float32
    target = torch.device("cpu") if profile.offload else clock.device
    torch.set_default_dtype(dtype)
    try:
        with target:
            model = InfiniteTalkTransformer(**config).eval().requires_grad_(False)
    finally:
        torch.set_default_dtype(torch.float32)
    notes = []
    if profile.fp8:
        notes.append(accel.fp8_storage(model, dtype))
    if profile.offload and clock.cuda:
        notes.append(accel.block_offload(model, clock.device))
    else:
        model.to(clock.device)
    notes.append(accel.attention_backend(model, clock.device, profile.attention))
    return model, notes


def profile_parts(profile, clock: Clock, tiny: bool, speakers: int, vae) -> dict:
    """One transformer pass, one VAE encode and decode at the profile's 480p/720p size."""
    import torch

    from gpu.infinitetalk.speakers import portrait_masks
    from gpu.two_speakers import default_boxes

    dev, dtype = clock.device, torch.bfloat16 if clock.cuda else torch.float32
    width, height = (32, 32) if tiny else profile.bucket(640, 640)
    model, notes = build_transformer(profile, clock, tiny)
    cfg = model.config
    frames = profile.clip_frames
    lat_t, lat_h, lat_w = (frames - 1) // 4 + 1, height // 8, width // 8
    x = torch.randn(1, 36, lat_t, lat_h, lat_w, device=dev, dtype=dtype)
    t = torch.tensor([500.0], device=dev)
    text = torch.randn(1, 512, cfg.text_dim, device=dev, dtype=dtype)
    image = torch.randn(1, 257, cfg.image_dim, device=dev, dtype=dtype)
    windows = torch.randn(
        speakers, frames, cfg.audio_window, cfg.audio_layers, cfg.audio_dim, device=dev
    ).to(dtype)
    masks = None
    if speakers == 2:
        masks = portrait_masks(default_boxes(width, height), (width, height), width, height)
    video = torch.randn(1, 3, frames, height, width, device=dev)
    latents = torch.randn(1, vae.config.z_dim, lat_t, lat_h, lat_w, device=dev)
    with torch.no_grad():
        run = partial(model, x, t, text, image, audio_windows=windows, speaker_masks=masks)
        parts = {
            "size": f"{width}x{height}",
            "tokens_per_pass": lat_t * lat_h * lat_w // 4,
            "pass_s": clock.time(run),
            "vae_encode_s": clock.time(partial(vae.encode, video), 1),
            "vae_decode_s": clock.time(partial(vae.decode, latents), 1),
            "speed": notes,
        }
    del model
    if clock.cuda:
        torch.cuda.empty_cache()
    return parts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="video length to cost")
    parser.add_argument("--profiles", default="fast,balanced,quality,low_vram")
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions per part")
    parser.add_argument("--speakers", type=int, choices=(1, 2), default=1)
    parser.add_argument("--tiny", action="store_true", help="tiny sizes on the CPU: a path check")
    args = parser.parse_args(argv)

    import torch
    from diffusers import AutoencoderKLWan

    from gpu.infinitetalk.profiles import PROFILES
    from gpu.infinitetalk.sampler import Guidance, frame_plan, snap_frames

    if not args.tiny and not torch.cuda.is_available():
        print(json.dumps({"error": "no CUDA device: this benchmark needs a GPU (H100 class)"}))
        return 2
    device = torch.device("cpu" if args.tiny else "cuda")
    clock = Clock(device, 1 if args.tiny else args.repeat)
    torch.manual_seed(0)
    name = "cpu (tiny sizes)" if args.tiny else torch.cuda.get_device_name(0)
    result: dict = {"device": name, "tiny": args.tiny, "video_seconds": args.seconds}
    result["speakers"] = args.speakers
    encoders = encoders_seconds(clock, args.tiny, args.seconds)
    result["encoders_s"] = round(encoders, 3)
    vae = AutoencoderKLWan(**(VAE_TINY if args.tiny else {})).to(device).eval()
    frames = snap_frames(int(args.seconds * 25))
    result["frames"] = frames
    result["profiles"] = {}
    for profile_name in args.profiles.split(","):
        profile = PROFILES[profile_name]
        if args.tiny:  # short clips: the path, not the figures
            profile = replace(profile, clip_frames=9, motion_frames=5)
        clock.reset_peak()
        parts = profile_parts(profile, clock, args.tiny, args.speakers, vae)
        plan = frame_plan(frames, profile.clip_frames, profile.motion_frames)
        branches = len(Guidance(profile.text_guidance, profile.audio_guidance).branches)
        passes = profile.steps * branches
        clip_s = parts["vae_encode_s"] + passes * parts["pass_s"] + parts["vae_decode_s"]
        total = encoders + len(plan) * clip_s
        result["profiles"][profile_name] = {
            "size": parts["size"],
            "tokens_per_pass": parts["tokens_per_pass"],
            "clips": len(plan),
            "steps": profile.steps,
            "guidance_branches": branches,
            "lora": profile.lora,
            "speed": parts["speed"],
            "transformer_pass_s": round(parts["pass_s"], 3),
            "vae_encode_s": round(parts["vae_encode_s"], 3),
            "vae_decode_s": round(parts["vae_decode_s"], 3),
            "total_s": round(total, 1),
            "gpu_s_per_video_s": round(total / (frames / 25), 2),
            "peak_memory_gib": clock.peak_gib(),
            "teacache_credited": False,
        }
    if "fast" in result["profiles"] and not args.tiny:
        figure = result["profiles"]["fast"]["gpu_s_per_video_s"]
        result["fast_goal"] = {
            "s_per_video_s": GOAL_FAST_S_PER_S,
            "met": figure <= GOAL_FAST_S_PER_S,
        }
    print(json.dumps(result))
    return 0


# --- longcat-avatar ---------------------------------------------------------------------------
# `python bench/gpu_engines_talking.py --engine longcat-avatar [--tiny] [--seconds 5]
# [--profiles fast,quality,low_vram]`: per profile, seconds of compute per second of video and
# peak memory. On CUDA every component is built at its published size with random weights (the
# 15.9B DiT in bf16, or INT8 for low_vram, UMT5-XXL, Whisper-large-v3 or wav2vec2-base, the Wan
# VAE) and timed on the shapes a real render uses:
#   total = text encoder + audio encoder
#           + segments x (VAE encode of the conditioning + steps x passes x DiT pass + VAE decode)
# with passes 3 when guided (quality) and 1 when distilled (fast, low_vram). With `--tiny` the
# real engine renders end to end on the CPU with the tiny published layouts of the tests
# (tests/longcat_tiny.py): the code path, not the speed, of a GPU render.


def longcat_avatar(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="longcat-avatar compute per second of video")
    parser.add_argument("--engine", choices=["longcat-avatar"], required=True)
    parser.add_argument("--seconds", type=float, default=5.0, help="video length to cost")
    parser.add_argument("--profiles", default="fast,quality,low_vram")
    parser.add_argument("--repeat", type=int, default=2, help="timed repetitions per part")
    parser.add_argument("--tiny", action="store_true", help="tiny weights, end to end, on CPU")
    args = parser.parse_args(argv)
    if args.tiny:
        result = _longcat_tiny(args)
    else:
        import torch

        if not torch.cuda.is_available():
            print(json.dumps({"error": "no CUDA device: use --tiny, or run on an H100-class GPU"}))
            return 2
        result = _longcat_full(args)
    print(json.dumps(result, indent=2))
    return 0


def _longcat_tiny(args) -> dict:
    import resource
    import tempfile

    from gpu.engine import RenderRequest
    from gpu.longcat.engine import LongCatAvatarEngine, scaled_profiles
    from gpu.media import load_image, probe_audio
    from infra.cli import samples
    from tests import longcat_tiny

    result: dict = {"device": "cpu (tiny weights)", "video_seconds": args.seconds, "profiles": {}}
    with tempfile.TemporaryDirectory() as tmp:
        root = longcat_tiny.build(Path(tmp) / "weights")
        png, wav = Path(tmp) / "face.png", Path(tmp) / "voice.wav"
        png.write_bytes(samples.portrait_png(96, 64))
        wav.write_bytes(samples.voice_wav(args.seconds, rate=16000))
        profiles = scaled_profiles(0.05, steps=1, segment_frames=17, cond_frames=5)
        request = RenderRequest(
            kind="talking_head",
            image=load_image(png, 40_000_000),
            audio=probe_audio(wav, 3600, 0.0),
        )
        engine = LongCatAvatarEngine(weights_dir=root, profiles=profiles, device="cpu")
        for name in args.profiles.split(","):
            plan = engine.check_inputs(replace(request, profile=name))
            engine._load(plan.profile)  # loading is not part of a render's cost
            start = time.perf_counter()
            frames = sum(1 for _ in engine.render(plan))
            seconds = time.perf_counter() - start
            result["profiles"][name] = {
                "frames": frames,
                "fps": plan.fps,
                "segments": plan.segments,
                "render_s": round(seconds, 3),
                "gpu_s_per_video_s": round(seconds / (frames / plan.fps), 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
    return result


def _longcat_full(args) -> dict:
    import torch
    from diffusers import AutoencoderKLWan
    from transformers import (
        UMT5Config,
        UMT5EncoderModel,
        Wav2Vec2Config,
        Wav2Vec2Model,
        WhisperConfig,
        WhisperModel,
    )

    from gpu.infinitetalk import accel
    from gpu.longcat.int8 import quantized_layout
    from gpu.longcat.model import FULL_SIZE, V10_AUDIO, FrameLayout, LongCatAvatarTransformer
    from gpu.longcat.profiles import PROFILES

    dev, bf16 = torch.device("cuda"), torch.bfloat16
    timed = Clock(dev, args.repeat).time
    torch.manual_seed(0)
    result: dict = {"device": torch.cuda.get_device_name(0), "video_seconds": args.seconds}
    torch.set_default_dtype(bf16)
    with torch.device(dev):
        t5 = UMT5EncoderModel(
            UMT5Config(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                       num_heads=64, feed_forward_proj="gated-gelu")
        ).eval()  # fmt: skip
        whisper = WhisperModel(
            WhisperConfig(num_mel_bins=128, d_model=1280, encoder_layers=32, decoder_layers=1,
                          encoder_attention_heads=20, encoder_ffn_dim=5120)
        ).get_encoder().eval()  # fmt: skip
    torch.set_default_dtype(torch.float32)
    wav2vec = Wav2Vec2Model(Wav2Vec2Config()).eval().to(dev)
    ids = torch.randint(0, 256384, (2, 512), device=dev)
    mel = torch.randn(1, 128, 3000, device=dev, dtype=bf16)
    wave = torch.randn(1, int(16000 * args.seconds), device=dev)
    chunks = -(-args.seconds // 30)
    with torch.no_grad():
        text_s = timed(partial(t5, ids), args.repeat)
        whisper_s = chunks * timed(partial(whisper, mel), args.repeat)
        wav2vec_s = timed(partial(wav2vec, wave), args.repeat)
    del t5, whisper, wav2vec
    torch.cuda.empty_cache()
    result["encoders_s"] = {"umt5": round(text_s, 3), "whisper": round(whisper_s, 3),
                            "wav2vec2": round(wav2vec_s, 3)}  # fmt: skip
    vae = AutoencoderKLWan().to(dev).eval()
    result["profiles"] = {}
    built: dict = {}
    for name in args.profiles.split(","):
        profile = PROFILES[name]
        variant = (profile.version, profile.int8)
        if variant not in built:
            built.clear()
            torch.cuda.empty_cache()
            config = {**FULL_SIZE, **(V10_AUDIO if profile.version == "v1.0" else {})}
            torch.set_default_dtype(bf16)
            with torch.device(dev):
                built[variant] = LongCatAvatarTransformer(**config).eval()
                if profile.int8:  # zero int8 weights: the same compute as the published ones
                    quantized_layout(built[variant]).to(dev)
            torch.set_default_dtype(torch.float32)
        model = built[variant]
        if profile.offload:
            model.to("cpu")
            torch.cuda.empty_cache()
            accel.block_offload(model, dev)
        torch.cuda.reset_peak_memory_stats()
        width, height = profile.bucket(832, 480)
        frames = int(args.seconds * profile.fps)
        segments = profile.segments(frames)
        lat_t, lat_h, lat_w = (profile.segment_frames - 1) // 4 + 1, height // 8, width // 8
        cfg = model.config
        ref = 1 if segments > 1 else 0
        layout = FrameLayout(lat_t + ref, 5 if ref else 1, ref=ref, ref_index=profile.ref_index,
                             mask_range=profile.mask_range)  # fmt: skip
        x = torch.randn(1, 16, lat_t + ref, lat_h, lat_w, device=dev, dtype=bf16)
        t = torch.full((1, lat_t + ref), 500.0, device=dev)
        text = torch.randn(1, 512, 4096, device=dev, dtype=bf16)
        mask = torch.ones(1, 512, device=dev, dtype=torch.long)
        windows = torch.randn(1, profile.segment_frames, 5, cfg.audio_block, cfg.audio_channel,
                              device=dev, dtype=bf16)  # fmt: skip
        video = torch.randn(1, 3, profile.cond_frames, height, width, device=dev)
        latents = torch.randn(1, 16, lat_t, lat_h, lat_w, device=dev)
        with torch.no_grad():
            step = timed(partial(model, x, t, text, windows, mask, layout), args.repeat)
            encode = timed(partial(vae.encode, video), 1)
            decode = timed(partial(vae.decode, latents), 1)
        passes = 3 if profile.text_guidance > 1 or profile.audio_guidance > 1 else 1
        audio_s = whisper_s if profile.version == "v1.5" else wav2vec_s
        total = text_s + audio_s + segments * (encode + profile.steps * passes * step + decode)
        result["profiles"][name] = {
            "model": profile.version,
            "size": f"{width}x{height}",
            "segments": segments,
            "tokens_per_pass": (lat_t + ref) * lat_h * lat_w // 4,
            "steps": profile.steps,
            "passes_per_step": passes,
            "dit_pass_s": round(step, 3),
            "vae_encode_s": round(encode, 3),
            "vae_decode_s": round(decode, 3),
            "total_s": round(total, 1),
            "gpu_s_per_video_s": round(total / (frames / profile.fps), 2),
            "peak_gpu_gib": round(torch.cuda.max_memory_allocated() / 2**30, 1),
        }
        if profile.offload:
            built.clear()
    return result


if __name__ == "__main__":
    if "--engine" in sys.argv[1:]:
        sys.exit(longcat_avatar(sys.argv[1:]))
    sys.exit(main())
