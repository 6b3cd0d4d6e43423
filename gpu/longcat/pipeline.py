"""Loading the published LongCat-Video-Avatar weights and rendering one video, segment by segment.

`Components.load` reads, offline, what `weights.py` pulled for one model version: the DiT shards
(checked key for key by `keymap`), the DMD LoRA fused into them for v1.5, the UMT5 text encoder,
the Wan VAE, the version's scheduler config and audio encoder. `render_frames` is the
reference's single-speaker demo (`run_demo_avatar_single_audio_to_video.py`): the first segment
animates the portrait (its latent pinned as frame 0, image-to-video); each later segment
continues from the last 13 frames of the one before as 4 clean conditioning latents (v1.5:
the decoded frames VAE-encoded again; v1.0: the segment's own last latents, the reference's
`use_vcond`), with the first segment's first latent in front as the identity reference. Frames are
yielded as each segment is decoded; only the conditioning frames are kept for the next one.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gpu.errors import EngineError, WeightsMissing
from gpu.infinitetalk.pipeline import fit_to_bucket, umt5_states, vae_decode, vae_encode
from gpu.longcat import keymap
from gpu.longcat.audio import WhisperFeatures, segment_windows
from gpu.longcat.model import FrameLayout, LongCatAvatarTransformer
from gpu.longcat.profiles import Profile
from gpu.longcat.weights import ENGINE, resolve

log = logging.getLogger(__name__)

LORA_RANK_ALPHA = (128, 64)  # the demo's `load_lora(..., lora_network_dim=128, alpha=64)`
# The single-speaker demo's negative prompt.
NEGATIVE_PROMPT = (
    "Close-up, Bright tones, overexposed, static, blurred details, subtitles, style, works, "
    "paintings, images, static, overall gray, worst quality, low quality, JPEG compression "
    "residue, ugly, incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, "
    "disfigured, misshapen limbs, fused fingers, still picture, messy background, three legs, "
    "many people in the background, walking backwards"
)
DEFAULT_PROMPT = "A person is speaking to the camera with natural expressions and lip movements."
# v1.0 continuation segments (not distilled) end on uniform timesteps (`enhance_hf`).
TAIL_FROM, TAIL_STEPS = 500.0, 10
# (weight source, folder, shard prefix) of each DiT: v1.5 bf16 or INT8, v1.0.
DITS = {
    ("v1.5", False): ("avatar-1.5-dit", "base_model", "diffusion_pytorch_model"),
    ("v1.5", True): ("avatar-1.5-int8", "base_model_int8", "quantized_model"),
    ("v1.0", False): ("avatar-1.0", "avatar_single", "diffusion_pytorch_model"),
}


@dataclass
class Components:
    version: str
    transformer: LongCatAvatarTransformer
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    audio: object  # WhisperFeatures (v1.5) or gpu.infinitetalk.audio.AudioEncoder (v1.0)
    scheduler_config: dict
    device: torch.device
    dtype: torch.dtype
    variant: tuple = ()  # (version, int8, offload): what a profile must match to reuse these
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(
        cls, root: Path, profile: Profile, device: torch.device, dtype: torch.dtype
    ) -> Components:
        from diffusers import AutoencoderKLWan
        from transformers import AutoTokenizer, UMT5EncoderModel

        from gpu.infinitetalk.audio import AudioEncoder

        base = resolve("longcat-video", root, marker="vae")
        source, sub, shards = DITS[(profile.version, profile.int8)]
        avatar = resolve(source, root, marker=sub)
        transformer = load_transformer(avatar / sub, dtype, shards)
        notes = [f"LongCat-Video-Avatar {profile.version}" + (" INT8" if profile.int8 else "")]
        if profile.distill:
            lora = avatar / "lora" / "dmd_lora.safetensors"
            if not lora.is_file():
                raise WeightsMissing(
                    f"{lora} is missing: run `dropreel weights pull {ENGINE} --profile "
                    f"{profile.name}`"
                )
            notes.append(f"DMD LoRA fused into {fuse_lora(transformer, lora)} layers")
        text_encoder = UMT5EncoderModel.from_pretrained(
            str(base / "text_encoder"), dtype=dtype, local_files_only=True
        )
        tokenizer = AutoTokenizer.from_pretrained(str(base / "tokenizer"), local_files_only=True)
        vae = AutoencoderKLWan.from_pretrained(
            str(base / "vae"), torch_dtype=torch.float32, local_files_only=True
        )
        if profile.version == "v1.5":
            audio = WhisperFeatures.from_pretrained(avatar / "whisper-large-v3", device)
            scheduler_dir = avatar / "scheduler"
        else:
            audio = AudioEncoder.from_pretrained(avatar / "chinese-wav2vec2-base", device)
            scheduler_dir = base / "scheduler"
        for module in (vae, text_encoder, transformer):
            module.eval().requires_grad_(False)
        vae.to(device)
        text_encoder.to("cpu" if profile.offload else device)
        if profile.offload and device.type == "cuda":
            from gpu.infinitetalk import accel

            notes.append(accel.block_offload(transformer, device))
        else:
            transformer.to(device)
        from diffusers import FlowMatchEulerDiscreteScheduler

        scheduler_config = FlowMatchEulerDiscreteScheduler.load_config(
            str(scheduler_dir), local_files_only=True
        )
        return cls(
            profile.version,
            transformer,
            vae,
            text_encoder,
            tokenizer,
            audio,
            scheduler_config,
            device,
            dtype,
            (profile.version, profile.int8, profile.offload),
            notes,
        )


def load_transformer(
    folder: Path, dtype: torch.dtype, prefix: str = "diffusion_pytorch_model"
) -> LongCatAvatarTransformer:
    """Build the DiT from the published config.json and load every published tensor.

    Zero missing, zero unexpected and zero wrongly shaped keys, or an error naming them. Shards
    named `quantized_model*` are the INT8 DiT: its Linears become `QuantizedLinear`s, whose int8
    weights and float32 scales keep their dtypes.
    """
    from accelerate import init_empty_weights
    from safetensors import safe_open

    from gpu.longcat.int8 import quantized_layout

    shards = sorted(folder.glob(f"{prefix}*.safetensors"))
    if not (folder / "config.json").is_file() or not shards:
        raise WeightsMissing(
            f"no config.json and {prefix}*.safetensors in {folder}: run "
            f"`dropreel weights pull {ENGINE}`"
        )
    config = json.loads((folder / "config.json").read_text())
    with init_empty_weights():
        model = LongCatAvatarTransformer.from_config(config)
        if prefix == "quantized_model":
            quantized_layout(model)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state: dict[str, torch.Tensor] = {}
    for path in shards:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                name = keymap.map_key(key, expected)
                if name in state:
                    raise EngineError(f"{path.name}: {key} is also in an earlier shard")
                tensor = f.get_tensor(key)
                cast = tensor.is_floating_point() and not name.endswith("weight_scale")
                state[name] = tensor.to(dtype) if cast else tensor
    keymap.load_checked(model, state, "LongCat-Video-Avatar", f"dropreel weights pull {ENGINE}")
    return model


@torch.no_grad()
def fuse_lora(model: torch.nn.Module, path: Path, multiplier: float = 1.0) -> int:
    """Add the DMD LoRA's low-rank update to each target Linear's weight; returns the count.

    W += multiplier * alpha_scale * up @ down, where a target split in K output chunks
    (`lora_up.blocks.K`) takes rows chunk k from up_k and the k-th slice of down's rows. An INT8
    layer keeps the update as a side branch instead (as the reference's LoRA forward does).
    """
    from safetensors.torch import load_file

    from gpu.longcat.int8 import QuantizedLinear

    entries = load_file(str(path))
    names = sorted({k.split(".lora_down.weight")[0] for k in entries if ".lora_down." in k})
    rank, alpha = LORA_RANK_ALPHA
    for name in names:
        target = model.get_submodule(keymap.lora_target(name))
        down = entries[f"{name}.lora_down.weight"].float()
        ups = [entries[f"{name}.lora_up.weight"]] if f"{name}.lora_up.weight" in entries else [
            entries[k] for k in sorted(
                (k for k in entries if k.startswith(f"{name}.lora_up.blocks.")),
                key=lambda k: int(k.split(".")[-2]),
            )
        ]  # fmt: skip
        scale = float(entries.get(f"{name}.alpha_scale", torch.tensor(alpha / rank)))
        up = torch.block_diag(*[u.float() for u in ups])  # a split target: one block per chunk
        if isinstance(target, QuantizedLinear):
            target.add_lora(down, up, multiplier * scale)
        else:
            weight = target.weight
            weight.copy_((weight.float() + multiplier * scale * (up @ down)).to(weight.dtype))
    return len(names)


# --- inputs -----------------------------------------------------------------------------------


@torch.no_grad()
def encode_text(c: Components, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """UMT5 features [B, 512, C] and their token mask [B, 512] (reference: _get_t5_prompt_embeds)."""
    device = next(c.text_encoder.parameters()).device
    hidden, mask = umt5_states(c.text_encoder, c.tokenizer, prompts, device)
    return hidden.to(c.device, c.dtype), mask.to(c.device)


def sigmas(profile: Profile, steps: int) -> list[float]:
    """The sigma schedule before the scheduler's shift (reference: get_timesteps_sigmas).

    Distilled (v1.5 with the DMD LoRA): the profile's 8 sigmas picked from a 1000-point grid,
    1.0 first; otherwise `steps` evenly from 1 to 0.001.
    """
    if profile.distill:
        grid = torch.linspace(0, 1, 1000).flip(0)
        index = 1000 - (torch.arange(1, profile.steps + 1) * (1000 // profile.steps))
        return grid[index].flip(0).tolist()
    return torch.linspace(1, 0.001, steps).tolist()


def make_scheduler(c: Components, profile: Profile, steps: int, continuation: bool):
    """The published scheduler set to the profile's sigmas (timesteps on the 0..1000 scale)."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    scheduler = FlowMatchEulerDiscreteScheduler.from_config(c.scheduler_config)
    schedule = sigmas(profile, steps)
    scheduler.set_timesteps(len(schedule), sigmas=schedule, device=c.device)
    if continuation and not profile.distill:  # enhance_hf
        kept = [t for t in scheduler.timesteps.tolist() if t > TAIL_FROM]
        tail = np.linspace(TAIL_FROM, 0, TAIL_STEPS, endpoint=False, dtype=np.float32).tolist()
        timesteps = torch.tensor(kept + tail, device=c.device, dtype=torch.float32)
        scheduler.timesteps = timesteps
        scheduler.sigmas = torch.cat([timesteps / 1000, timesteps.new_zeros(1)])
    return scheduler


# --- the render -------------------------------------------------------------------------------


@dataclass
class Job:
    image: Image.Image
    features: torch.Tensor  # [N, blocks, C] per audio feature frame
    width: int
    height: int
    frames: int  # video frames to deliver
    prompt: str
    negative_prompt: str
    seed: int
    profile: Profile
    steps: int
    text_guidance: float
    audio_guidance: float


@dataclass
class SegmentTrace:
    """What one segment was conditioned on, for tests and logs."""

    index: int
    first_new_frame: int
    conditioning: np.ndarray | None  # the previous segment's last frames it continued from


def segment_lengths(profile: Profile, frames: int) -> list[int]:
    """Frames rendered per segment: one 4n+1 segment up to one segment's worth, else full ones."""
    if frames <= profile.segment_frames:
        return [(frames - 1 + 3) // 4 * 4 + 1]
    return [profile.segment_frames] * profile.segments(frames)


def render_frames(
    c: Components,
    job: Job,
    progress: Callable[[int, int], None] | None = None,
    trace: list[SegmentTrace] | None = None,
) -> Iterator[np.ndarray]:
    """Yield the video's frames (HxWx3 uint8) segment by segment."""
    profile = job.profile
    cond_image = fit_to_bucket(job.image, job.width, job.height)  # [3, H, W] in [-1, 1]
    guided = job.text_guidance > 1 or job.audio_guidance > 1
    text, mask = encode_text(c, [job.prompt, job.negative_prompt] if guided else [job.prompt])
    lengths = segment_lengths(profile, job.frames)
    total_steps = len(lengths) * job.steps
    generator = torch.Generator("cpu").manual_seed(job.seed)
    lat_h, lat_w = job.height // 8, job.width // 8
    ref_latent = vae_encode(c, cond_image[:, None])  # [z, 1, h, w]
    carried: torch.Tensor | None = None  # previous segment's last frames, [3, n, H, W]
    carried_latents: torch.Tensor | None = None  # ... and its last latents, [z, k, h, w]
    cond_latents = (profile.cond_frames - 1) // 4 + 1
    emitted = 0

    for index, length in enumerate(lengths):
        start = index * profile.new_frames
        first = index == 0
        windows = segment_windows(job.features, start, length, profile.audio_stride)[None]
        if first:
            cond, layout_ref = ref_latent, 0
        else:
            # v1.5 encodes the decoded frames again; v1.0 keeps the sampled latents (`use_vcond`).
            again = vae_encode(c, carried) if profile.version == "v1.5" else carried_latents
            cond, layout_ref = torch.cat([ref_latent, again.to(ref_latent)], dim=1), 1
        lat_t = (length - 1) // 4 + 1
        noise = torch.randn(
            (ref_latent.shape[0], lat_t + layout_ref, lat_h, lat_w), generator=generator
        )
        layout = FrameLayout(
            lat_t + layout_ref,
            cond.shape[1],
            ref=layout_ref,
            ref_index=profile.ref_index if layout_ref else None,
            mask_range=profile.mask_range,
        )
        if trace is not None:
            frames_np = None if carried is None else _to_uint8(carried)
            trace.append(SegmentTrace(index, emitted, frames_np))

        def on_step(step: int, index=index) -> None:
            if progress:
                progress(index * job.steps + step, total_steps)

        latents = _denoise(c, job, noise, cond, layout, text, mask, windows, not first, on_step)
        video = vae_decode(c, latents[:, layout_ref:])  # [3, length, H, W]
        carried = video[:, -profile.cond_frames :]
        carried_latents = latents[:, layout_ref:][:, -cond_latents:].cpu()
        new = video if first else video[:, profile.cond_frames :]
        new = new[:, : job.frames - emitted]
        frames = _to_uint8(new)
        yield from frames
        emitted += len(frames)


def _to_uint8(video: torch.Tensor) -> np.ndarray:
    """[3, n, H, W] in [-1, 1] -> [n, H, W, 3] uint8."""
    return ((video.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()


@torch.no_grad()
def _denoise(c, job, noise, cond, layout, text, mask, windows, continuation, on_step):
    """One segment's sampling loop: conditioning latents pinned at timestep 0, guidance as the
    reference (three passes: negative text, positive text, negative text without audio)."""
    model, device, dtype = c.transformer, c.device, c.dtype
    scheduler = make_scheduler(c, job.profile, job.steps, continuation)
    k = cond.shape[1]
    latents = noise.to(device, torch.float32)
    latents[:, :k] = cond.to(device)
    windows = windows.to(device, dtype)
    silent = torch.zeros_like(windows)
    guided = text.shape[0] == 2
    for step, t in enumerate(scheduler.timesteps):
        timestep = torch.full((1, layout.frames), float(t), device=device)
        timestep[:, :k] = 0
        x = latents[None].to(dtype)

        def predict(branch_text, branch_mask, audio, x=x, timestep=timestep):
            return model(x, timestep, branch_text, audio, branch_mask, layout)[0]

        cond_pred = predict(text[:1], mask[:1], windows)
        if guided:
            neg_text = predict(text[1:], mask[1:], windows)
            uncond = predict(text[1:], mask[1:], silent)
            pred = (
                uncond
                + job.text_guidance * (cond_pred - neg_text)
                + job.audio_guidance * (neg_text - uncond)
            )
        else:
            pred = cond_pred
        # The model predicts x0 - noise; the scheduler steps along noise - x0.
        latents[:, k:] = scheduler.step(-pred[:, k:], t, latents[:, k:], return_dict=False)[0]
        on_step(step + 1)
    return latents
