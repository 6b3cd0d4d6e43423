"""Speech -> the audio windows LongCat-Video-Avatar's audio adapter reads, for both versions.

The reference (`pipeline_longcat_video_avatar.py`: `get_audio_embedding_*`, and the demo's
window sampling) does, in order:

1. separate the vocals (audio-separator with an ONNX/RoFormer model): dropreel skips this step
   (docs/TALKING_HEAD.md: the portrait still lip-syncs on clean speech; music or noise under
   the voice makes the mouth move to it), then load at 16 kHz mono;
2. loudness-normalise to -23 LUFS (ITU-R BS.1770, pyloudnorm), leaving |loudness| > 100 alone;
3. v1.0 (chinese-wav2vec2-base): add a -45 dBFS noise floor and a 3rd-order Butterworth low-pass
   at 3 kHz, then wav2vec2's CNN features interpolated to 32 per second (twice the 16 fps video
   rate) before the encoder, keeping every encoder layer: [frames, 12, 768] (the same front end
   as InfiniteTalk's, at another rate: `gpu.infinitetalk.audio.AudioEncoder`);
   v1.5 (whisper-large-v3): log-mel features in 30 s chunks, the encoder's hidden states (50 per
   second, 33 of them: the embedding output and 32 layers) averaged in four groups of 8 plus the
   last one alone, each interpolated to 25 per second: [frames, 5, 1280];
4. per video frame, a window of 5 feature frames centred on it (offsets -2..+2, clamped), with
   a stride of 2 feature frames per video frame for v1.0 and 1 for v1.5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gpu.infinitetalk.audio import AudioEncoder, loudness_normalize
from gpu.media import AudioInfo

SAMPLE_RATE = 16_000
WINDOW = 5
NOISE_FLOOR_DB = -45.0
LOWPASS_HZ = 3000.0
MEL_CHUNK = 750 * 640  # samples per feature-extractor call (30 s)
ENCODER_CHUNK = 3000  # mel frames per encoder call (30 s)
ENCODER_FPS = 50


def v10_conditioning(speech: np.ndarray, seed: int) -> np.ndarray:
    """v1.0's extra conditioning: a -45 dBFS Gaussian noise floor, then a 3 kHz low-pass."""
    from scipy import signal

    rng = np.random.default_rng(seed)
    noisy = speech + rng.standard_normal(len(speech)) * 10 ** (NOISE_FLOOR_DB / 20)
    b, a = signal.butter(3, LOWPASS_HZ / (SAMPLE_RATE / 2))
    return signal.lfilter(b, a, noisy).astype(np.float32)


class WhisperFeatures:
    """Whisper-large-v3's encoder run the reference's way: 5 layer groups at the video rate."""

    def __init__(self, model, feature_extractor, device: torch.device | str = "cpu") -> None:
        self.encoder = model.get_encoder().eval().requires_grad_(False).to(device)
        self.feature_extractor = feature_extractor
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, path: Path, device: torch.device | str = "cpu") -> WhisperFeatures:
        from transformers import WhisperFeatureExtractor, WhisperModel

        model = WhisperModel.from_pretrained(str(path), local_files_only=True)
        extractor = WhisperFeatureExtractor.from_pretrained(str(path), local_files_only=True)
        return cls(model, extractor, device)

    @torch.no_grad()
    def embed(self, speech: np.ndarray, fps: int) -> torch.Tensor:
        """16 kHz mono speech -> [int(seconds * fps), 5, hidden] float32 on the CPU."""
        frames = int(len(speech) / SAMPLE_RATE * fps)
        mels = [
            self.feature_extractor(
                speech[i : i + MEL_CHUNK], sampling_rate=SAMPLE_RATE, return_tensors="pt"
            ).input_features
            for i in range(0, len(speech), MEL_CHUNK)
        ]
        mel = torch.cat(mels, dim=-1)
        dtype = next(self.encoder.parameters()).dtype
        hidden = []
        for i in range(0, mel.shape[-1], ENCODER_CHUNK):
            states = self.encoder(
                mel[:, :, i : i + ENCODER_CHUNK].to(self.device, dtype), output_hidden_states=True
            ).hidden_states
            hidden.append(torch.stack(states, dim=2))  # [1, T, layers + 1, D]
        states = torch.cat(hidden, dim=1)[:, : frames * 2].float()
        layers = states.shape[2] - 1  # 32 for large-v3
        group = layers // 4
        parts = [states[:, :, g * group : (g + 1) * group].mean(dim=2) for g in range(4)]
        parts.append(states[:, :, layers])
        resampled = [
            F.interpolate(p.transpose(1, 2), size=frames, mode="linear", align_corners=True)
            for p in parts
        ]
        return torch.stack(resampled, dim=-1)[0].permute(1, 2, 0).contiguous().cpu()


def speech_features(
    audio: AudioInfo,
    encoder: AudioEncoder | WhisperFeatures,
    fps: int,
    stride: int,
    seed: int,
    pad_seconds: float = 0.0,
) -> torch.Tensor:
    """The whole front end for one recording -> per-feature-frame features [N, blocks, C].

    `pad_seconds` of silence are appended first (the reference pads the audio to the length of
    the segments it renders).
    """
    speech = audio.samples(SAMPLE_RATE).astype(np.float32)
    if pad_seconds > 0:
        speech = np.concatenate([speech, np.zeros(int(np.ceil(pad_seconds * SAMPLE_RATE)))])
    speech = loudness_normalize(speech)
    if isinstance(encoder, WhisperFeatures):
        return encoder.embed(speech, fps * stride)
    speech = v10_conditioning(speech, seed)
    return encoder.embed(speech, int(len(speech) / SAMPLE_RATE * fps * stride))


def segment_windows(features: torch.Tensor, start: int, frames: int, stride: int) -> torch.Tensor:
    """Windows [frames, 5, blocks, C] for video frames start..start+frames-1 (reference demo)."""
    centres = (start + torch.arange(frames)) * stride
    index = (centres[:, None] + torch.arange(WINDOW)[None] - WINDOW // 2).clamp(
        0, features.shape[0] - 1
    )
    return features[index]
