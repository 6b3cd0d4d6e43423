"""Loading the published weights and running one talking-head render, clip by clip.

`Components.load` reads the files `weights.py` fetched, offline: the Wan transformer shards and
InfiniteTalk's adapter (both in the reference's naming, renamed by `keymap`), the diffusers-layout
VAE, UMT5 text encoder + tokenizer and CLIP image encoder, and chinese-wav2vec2-base.
`render_frames` is the reference's `generate_infinitetalk` for one speaker: clip mode for up to
one clip of frames, streaming mode beyond, each later clip starting from the last 9 frames of the
one before. Given a video instead of an image (dubbing), each clip is conditioned on the source
frame where it starts (its CLIP tokens and first-frame VAE condition), as the reference's video
mode does; the motion frames still come from the clip before. Every clip is colour-matched to the
portrait before the next continues from it; with re-anchoring, every Nth clip starts again from
the portrait (or its source frame) instead of the clip before (docs/TALKING_HEAD.md).

Two speakers (one portrait, two voices) run the same loop with InfiniteTalk's multi-person
adapter swapped in (`Components.use_adapter`): both voices' windows go to the model side by
side with the portrait's speaker masks, and the no-audio guidance passes hear one silent voice,
as the reference's do.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from gpu.errors import EngineError, WeightsMissing
from gpu.infinitetalk import keymap
from gpu.infinitetalk.audio import AudioEncoder, frame_windows
from gpu.infinitetalk.model import InfiniteTalkTransformer, TeaCacheBranch, config_from_original
from gpu.infinitetalk.profiles import Profile
from gpu.infinitetalk.sampler import Guidance, frame_plan, match_colors, mirror_past_end, sample
from gpu.infinitetalk.weights import resolve

log = logging.getLogger(__name__)

TEXT_LEN = 512
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# The negative prompt of the reference's InfiniteTalk config (wan_multitalk_14B.py).
NEGATIVE_PROMPT = (
    "bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, "
    "images, static, overall gray, worst quality, low quality, JPEG compression residue, ugly, "
    "incomplete, extra fingers, poorly drawn hands, poorly drawn faces, deformed, disfigured, "
    "misshapen limbs, fused fingers, still picture, messy background, three legs, many people in "
    "the background, walking backwards"
)
DEFAULT_PROMPT = "A person is talking to the camera, with natural facial expressions and gestures."
ADAPTERS = {"single": "single/infinitetalk.safetensors", "multi": "multi/infinitetalk.safetensors"}


@dataclass
class Options:
    """How to place and run the components (from settings and the profile)."""

    device: torch.device
    dtype: torch.dtype
    fp8: bool = False
    offload: bool = False
    attention: tuple[str, ...] = ()  # backends to try, fastest first (the profile's)
    compile: bool = False


@dataclass
class Components:
    transformer: InfiniteTalkTransformer
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    image_encoder: torch.nn.Module
    audio: AudioEncoder
    options: Options
    clip_mean: tuple[float, ...] = CLIP_MEAN
    clip_std: tuple[float, ...] = CLIP_STD
    notes: list[str] = field(default_factory=list)
    adapters: dict[str, Path] = field(default_factory=dict)  # "single"/"multi" -> its file
    adapter: str = "single"  # the adapter whose weights the transformer holds now

    def use_adapter(self, name: str) -> None:
        """Put the single- or multi-person adapter's weights into the transformer (in place).

        The two files hold the same tensors (names and shapes: the reference loads either into
        one model, strictly); only the audio projection, the audio cross-attention and its norm
        differ from the Wan weights, so nothing else is touched.
        """
        if name == self.adapter:
            return
        if name not in self.adapters:
            raise WeightsMissing(
                f"the {name}-person InfiniteTalk weights are not on disk: run "
                "`dropreel weights pull talking-head`"
            )
        from safetensors import safe_open

        params = dict(self.transformer.named_parameters())
        with safe_open(str(self.adapters[name]), framework="pt") as f, torch.no_grad():
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                target = params[keymap.map_key(key)]
                target.data.copy_(f.get_tensor(key).to(target.device, target.dtype))
        self.adapter = name

    def transformer_dtype(self) -> torch.dtype:
        return self.options.dtype

    @classmethod
    def load(cls, root: Path, options: Options, before_placing=None) -> Components:
        from diffusers import AutoencoderKLWan
        from transformers import AutoTokenizer, CLIPVisionModel, UMT5EncoderModel

        wan = resolve("wan-transformer", root, marker="config.json")
        parts = resolve("wan-components", root, marker="vae")
        talk = resolve("infinitetalk", root, marker=ADAPTERS["single"])
        speech = resolve("wav2vec2", root, marker="config.json")
        device, dtype = options.device, options.dtype
        text_device = torch.device("cpu") if options.offload else device

        transformer = load_transformer(wan, talk / ADAPTERS["single"], dtype)
        vae = AutoencoderKLWan.from_pretrained(
            str(parts / "vae"), torch_dtype=torch.float32, local_files_only=True
        ).to(device)
        text_encoder = UMT5EncoderModel.from_pretrained(
            str(parts / "text_encoder"), dtype=dtype, local_files_only=True
        ).to(text_device)
        tokenizer = AutoTokenizer.from_pretrained(str(parts / "tokenizer"), local_files_only=True)
        image_encoder = CLIPVisionModel.from_pretrained(
            str(parts / "image_encoder"), dtype=dtype, local_files_only=True
        ).to(device)
        audio = AudioEncoder.from_pretrained(speech, device)
        mean, std = _clip_normalisation(parts / "image_processor" / "preprocessor_config.json")
        for module in (vae, text_encoder, image_encoder):
            module.eval().requires_grad_(False)
        components = cls(
            transformer, vae, text_encoder, tokenizer, image_encoder, audio, options, mean, std
        )
        components.adapters = {n: talk / f for n, f in ADAPTERS.items() if (talk / f).exists()}
        if "multi" in components.adapters:  # a bad file fails now, not at a two-speaker job
            check_adapter(components.adapters["multi"], transformer)
        if before_placing is not None:
            before_placing(components)  # e.g. fuse a LoRA before fp8 storage
        components.place()
        return components

    def place(self) -> None:
        """Move the transformer where it runs: whole, block-offloaded, fp8-stored, compiled."""
        from gpu.infinitetalk import accel

        model, opts = self.transformer, self.options
        model.eval().requires_grad_(False)
        if opts.fp8:
            self.notes.append(accel.fp8_storage(model, opts.dtype))
        if opts.offload and opts.device.type == "cuda":
            self.notes.append(accel.block_offload(model, opts.device))
        else:
            model.to(opts.device)
        self.notes.append(accel.attention_backend(model, opts.device, opts.attention))
        if opts.compile:
            self.notes.append(accel.compile_blocks(model, opts.device))


def load_transformer(wan_dir: Path, adapter: Path, dtype: torch.dtype) -> InfiniteTalkTransformer:
    """Build the model from the reference's config.json and load every published tensor.

    Zero missing, zero unexpected and zero wrongly shaped keys, or an error naming them.
    """
    from accelerate import init_empty_weights
    from safetensors import safe_open

    original = json.loads((wan_dir / "config.json").read_text())
    with init_empty_weights():
        model = InfiniteTalkTransformer(**config_from_original(original))
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    keep_fp32 = tuple(model._keep_in_fp32_modules)
    shards = sorted(wan_dir.glob("diffusion_pytorch_model*.safetensors"))
    if not shards:
        raise WeightsMissing(
            f"no diffusion_pytorch_model*.safetensors in {wan_dir}: run "
            "`dropreel weights pull talking-head`"
        )
    state: dict[str, torch.Tensor] = {}
    for path in [*shards, adapter]:
        with safe_open(str(path), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                name = key if key in expected else keymap.map_key(key)
                if name in state:
                    raise EngineError(f"{path.name}: {key} is also in an earlier file")
                tensor = f.get_tensor(key)
                want = torch.float32 if any(m in name for m in keep_fp32) else dtype
                state[name] = tensor.to(want) if tensor.is_floating_point() else tensor
    keymap.load_checked(model, state, "talking-head", "dropreel weights pull talking-head")
    return model


def check_adapter(path: Path, model: InfiniteTalkTransformer) -> None:
    """The adapter file at `path` names exactly the model's adapter tensors, with their shapes
    (reads the file's header only)."""
    from safetensors import safe_open

    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with safe_open(str(path), framework="pt") as f:
        theirs = {keymap.map_key(k): tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    adapter = {k: s for k, s in ours.items() if k.startswith("audio_proj.") or ".audio_" in k}
    adapter.update({k: s for k, s in ours.items() if ".norm_x." in k})
    missing, unexpected, wrong = keymap.check_complete(
        {k: torch.empty(s, device="meta") for k, s in theirs.items()}, adapter
    )
    if missing or unexpected or wrong:
        raise EngineError(
            f"{path.name} ({path.parent.name}) does not match the InfiniteTalk adapter: "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}), {len(wrong)} wrongly shaped (e.g. {wrong[:2]}); pull it "
            "again with `dropreel weights pull talking-head`"
        )


def _clip_normalisation(path: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if path.exists():
        cfg = json.loads(path.read_text())
        return tuple(cfg.get("image_mean", CLIP_MEAN)), tuple(cfg.get("image_std", CLIP_STD))
    return CLIP_MEAN, CLIP_STD


# --- inputs -----------------------------------------------------------------------------------


def fit_to_bucket(image: Image.Image, width: int, height: int) -> torch.Tensor:
    """Resize (bilinear, covering) and centre-crop to width x height -> [3, H, W] in [-1, 1].

    As the reference's `resize_and_centercrop`: scale = max(H/h, W/w), sizes rounded up, then
    torchvision's `center_crop`, whose offsets are `int(round(excess / 2))` (half to even).
    """
    scale = max(height / image.height, width / image.width)
    new_w, new_h = math.ceil(scale * image.width), math.ceil(scale * image.height)
    resized = np.asarray(image.convert("RGB").resize((new_w, new_h), Image.Resampling.BILINEAR))
    top, left = round((new_h - height) / 2), round((new_w - width) / 2)
    crop = resized[top : top + height, left : left + width]
    return torch.from_numpy(crop.copy()).permute(2, 0, 1).float() / 127.5 - 1.0


def clean_prompt(text: str) -> str:
    """The reference's T5 cleaning: ftfy, HTML entities unescaped twice, whitespace collapsed."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()


@torch.no_grad()
def umt5_states(
    encoder, tokenizer, prompts: list[str], device
) -> tuple[torch.Tensor, torch.Tensor]:
    """UMT5 states [B, 512, C] of the cleaned prompts and their token mask [B, 512], as Wan's
    reference (and LongCat's, which inherits it) tokenises: padded to 512, truncated, with </s>."""
    tokens = tokenizer(
        [clean_prompt(p) for p in prompts],
        padding="max_length",
        max_length=TEXT_LEN,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    ids, mask = tokens.input_ids.to(device), tokens.attention_mask.to(device)
    return encoder(ids, attention_mask=mask).last_hidden_state, mask


@torch.no_grad()
def encode_text(c: Components, prompts: list[str]) -> list[torch.Tensor]:
    """UMT5 embeddings, cut to each prompt's tokens, zero-padded to 512 (as the reference)."""
    enc = c.text_encoder
    device = next(enc.parameters()).device
    moved = False
    if device.type == "cpu" and c.options.device.type == "cuda" and not c.options.offload:
        enc.to(c.options.device)
        device, moved = c.options.device, True
    hidden, mask = umt5_states(enc, c.tokenizer, prompts, device)
    out = []
    for row, length in zip(hidden, mask.sum(dim=1).tolist(), strict=True):
        padded = torch.zeros_like(row)
        padded[:length] = row[:length]
        out.append(padded[None].to(c.options.device, c.transformer_dtype()))
    if moved:
        enc.to("cpu")
    return out


@torch.no_grad()
def encode_clip(c: Components, image: torch.Tensor) -> torch.Tensor:
    """CLIP ViT penultimate-layer tokens of the image [3, H, W] in [-1, 1]: [1, 257, 1280]."""
    enc = c.image_encoder
    size = enc.config.image_size
    device, dtype = next(enc.parameters()).device, next(enc.parameters()).dtype
    pixels = F.interpolate(
        image[None].float(), size=(size, size), mode="bicubic", align_corners=False
    )
    pixels = pixels.mul(0.5).add(0.5)
    mean = torch.tensor(c.clip_mean).view(1, 3, 1, 1)
    std = torch.tensor(c.clip_std).view(1, 3, 1, 1)
    pixels = ((pixels - mean) / std).to(device, dtype)
    hidden = enc(pixel_values=pixels, output_hidden_states=True).hidden_states[-2]
    return hidden.to(c.options.device, c.transformer_dtype())


def _latent_stats(vae) -> tuple[torch.Tensor, torch.Tensor]:
    z = vae.config.z_dim
    mean = torch.tensor(vae.config.latents_mean).view(1, z, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, z, 1, 1, 1)
    return mean, std


@torch.no_grad()
def vae_encode(c: Components, video: torch.Tensor) -> torch.Tensor:
    """[3, F, H, W] in [-1, 1] -> normalised latents [z, (F-1)/4+1, H/8, W/8] (the mode)."""
    vae = c.vae
    device = next(vae.parameters()).device
    dist = vae.encode(video[None].to(device, torch.float32)).latent_dist
    mean, std = _latent_stats(vae)
    return ((dist.mode() - mean.to(device)) / std.to(device))[0]


@torch.no_grad()
def vae_decode(c: Components, latents: torch.Tensor) -> torch.Tensor:
    """Normalised latents [z, T, h, w] -> video [3, F, H, W] in [-1, 1]."""
    vae = c.vae
    device = next(vae.parameters()).device
    mean, std = _latent_stats(vae)
    z = latents[None].to(device, torch.float32) * std.to(device) + mean.to(device)
    return vae.decode(z).sample[0].clamp(-1, 1)


# --- the render -------------------------------------------------------------------------------


@dataclass
class Job:
    image: Image.Image  # the portrait, or the source video's first frame (dubbing)
    speech_embedding: torch.Tensor  # [N, layers, C]
    width: int
    height: int
    frames: int
    prompt: str
    negative_prompt: str
    seed: int
    profile: Profile
    steps: int
    text_guidance: float
    audio_guidance: float
    later_sources: Iterator[Image.Image] | None = None  # dubbing: where each later clip starts
    reanchor_every: int = 0  # restart from the portrait/source frame every N clips (0: never)
    second_speech: torch.Tensor | None = None  # two speakers: speaker 2's [N, layers, C]
    speaker_masks: torch.Tensor | None = None  # two speakers: [3, H/8, W/8] (see speakers.py)


def render_frames(
    c: Components, job: Job, progress: Callable[[int, int], None] | None = None
) -> Iterator[np.ndarray]:
    """Yield the video's frames (HxWx3 uint8) clip by clip, as each clip is decoded."""
    device, dtype, profile = c.options.device, c.options.dtype, job.profile
    cond = fit_to_bucket(job.image, job.width, job.height)  # [3, H, W]
    reference_rgb = (cond.permute(1, 2, 0) + 1) / 2
    context, context_null = encode_text(c, [job.prompt, job.negative_prompt])
    clip_tokens = encode_clip(c, cond)
    guidance = Guidance(job.text_guidance, job.audio_guidance)
    plan = frame_plan(job.frames, profile.clip_frames, profile.motion_frames)
    last_start, last_length = plan[-1]
    voices = [job.speech_embedding]
    if job.second_speech is not None:
        voices.append(job.second_speech)
    if len(plan) > 1:  # streaming: the last full clip runs on mirrored audio, then is trimmed
        voices = [mirror_past_end(v, last_start + last_length) for v in voices]
    masks = None if job.speaker_masks is None else job.speaker_masks.to(device)
    generator = torch.Generator("cpu").manual_seed(job.seed)
    z = c.vae.config.z_dim
    lat_h, lat_w = job.height // 8, job.width // 8
    image_latent = vae_encode(c, cond[:, None])  # [z, 1, h, w]
    y_cache: dict[int, torch.Tensor] = {}
    carried: torch.Tensor | None = None  # last motion frames, [3, m, H, W] in [-1, 1]
    emitted = 0

    for index, (start, length) in enumerate(plan):
        first = index == 0
        if job.later_sources is not None and not first:  # video mode: this clip's source frame
            cond = fit_to_bucket(next(job.later_sources), job.width, job.height)
            clip_tokens = encode_clip(c, cond)
            y_cache.clear()
        fresh = length if first else length - profile.motion_frames
        lat_t = (length - 1) // 4 + 1
        if length not in y_cache:
            y_cache[length] = _image_condition(c, cond, length, lat_h, lat_w)
        y = y_cache[length].to(device, dtype)
        anchored = not first and job.reanchor_every and index % job.reanchor_every == 0
        if first:
            condition = image_latent
        elif anchored:  # re-anchor: start again from the portrait (or this clip's source frame)
            condition = vae_encode(c, cond[:, None])
        else:
            condition = vae_encode(c, carried)
        windows = torch.stack([frame_windows(v, start, length) for v in voices]).to(device)
        model = c.transformer
        # The reference projects the audio inside every forward; so do we (it is cheap, and it
        # keeps the adapter under the model's own offload hooks). Its no-audio passes hear one
        # silent voice, whatever the number of speakers.
        audio_on, audio_off = windows, torch.zeros_like(windows[-1:])
        caches = (
            {
                b: TeaCacheBranch(profile.teacache, profile.teacache_coefficients)
                for b in guidance.branches
            }
            if profile.teacache
            else {}
        )

        velocity = _velocity_fn(
            model,
            y,
            (context, context_null),
            clip_tokens,
            (audio_on, audio_off),
            caches,
            masks,
            device,
            dtype,
        )

        noise = torch.randn((z, lat_t, lat_h, lat_w), generator=generator).to(device)

        def on_step(step: int, steps: int, base=emitted, fresh=fresh) -> None:
            if progress:
                progress(base + fresh * step // (steps + 1), job.frames)

        latents = sample(
            velocity,
            noise,
            condition.to(device, torch.float32),
            job.steps,
            profile.shift,
            guidance,
            on_step,
        )
        video = vae_decode(c, latents).float().cpu()  # [3, F, H, W]
        rgb = (video.permute(1, 2, 3, 0) + 1) / 2  # [F, H, W, 3]
        rgb = match_colors(rgb, reference_rgb, profile.color_match)
        carried = rgb[-profile.motion_frames :].permute(3, 0, 1, 2) * 2 - 1
        new = rgb if first else rgb[profile.motion_frames :]
        new = new[: min(fresh, job.frames - emitted)]
        frames = (new * 255).round().clamp(0, 255).to(torch.uint8).numpy()
        yield from frames
        emitted += len(frames)
        if progress:
            progress(emitted, job.frames)
        skipped = sum(cache.skipped for cache in caches.values())
        if skipped:
            log.info(
                "clip %d: TeaCache skipped %d of %d passes", index, skipped, job.steps * len(caches)
            )


def _image_condition(
    c: Components, cond: torch.Tensor, length: int, lat_h: int, lat_w: int
) -> torch.Tensor:
    """The I2V condition: 4 mask channels (first frame known) + latents of [image, zeros...]."""
    video = torch.zeros(3, length, cond.shape[1], cond.shape[2])
    video[:, 0] = cond
    latents = vae_encode(c, video)  # [z, T, h, w]
    mask = torch.zeros(1, length, lat_h, lat_w)
    mask[:, 0] = 1
    mask = torch.cat([mask[:, :1].repeat(1, 4, 1, 1), mask[:, 1:]], dim=1)  # first frame x4
    mask = mask.view(mask.shape[1] // 4, 4, lat_h, lat_w).transpose(0, 1)  # [4, T, h, w]
    return torch.cat([mask.to(latents), latents], dim=0)


def _velocity_fn(model, y, contexts, clip_tokens, audios, caches, masks, device, dtype):
    """velocity(latents, t, branch) for one clip: which prompt and audio each branch sees."""
    context, context_null = contexts
    audio_on, audio_off = audios

    def velocity(latents: torch.Tensor, t: torch.Tensor, branch: str) -> torch.Tensor:
        text = context_null if branch in ("drop_text", "uncond") else context
        audio = audio_off if branch in ("drop_audio", "uncond") else audio_on
        x = torch.cat([latents.to(device, dtype), y], dim=0)[None]
        with torch.no_grad():
            out = model(
                x,
                t.to(device),
                text,
                clip_tokens,
                audio_windows=audio,
                speaker_masks=masks,
                cache=caches.get(branch),
            )
        return out[0].float()

    return velocity
