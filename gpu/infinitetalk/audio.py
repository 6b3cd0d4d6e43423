"""Speech -> the per-frame wav2vec2 features InfiniteTalk's audio adapter was trained on.

The reference (`generate_infinitetalk.py`, `src/audio_analysis/wav2vec2.py`) does, in order:

1. load at 16 kHz mono (`librosa.load(path, sr=16000)`: channels averaged, soxr resampling);
2. loudness-normalise to -23 LUFS (ITU-R BS.1770 integrated loudness, pyloudnorm), leaving
   near-silent input (|loudness| > 100) untouched;
3. `Wav2Vec2FeatureExtractor` (zero mean, unit variance), then the wav2vec2 CNN;
4. interpolate the CNN features (50 Hz) linearly, corners aligned, to `int(seconds * 25)` frames
   *before* the transformer encoder, so every layer runs at the video frame rate;
5. keep the outputs of all encoder layers (`hidden_states[1:]`: 12 for the base model), giving
   [frames, 12, 768];
6. per video frame, a window of 5 frames centred on it (offsets -2..+2), clamped at the ends.

Step 1 is dropreel's one audio loader (`AudioInfo.samples`, gpu/media.py): the container is
recognised from its bytes, any sample format is scaled to [-1, 1], channels are averaged and soxr
resamples, as librosa does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from gpu.errors import InputError
from gpu.infinitetalk.engine import FPS
from gpu.media import AudioInfo

SAMPLE_RATE = 16_000
TARGET_LUFS = -23.0
WINDOW = 5


def loudness_normalize(
    speech: np.ndarray, rate: int = SAMPLE_RATE, target: float = TARGET_LUFS
) -> np.ndarray:
    """Gain `speech` so its BS.1770 integrated loudness is `target` LUFS.

    Silence (loudness below -100 LUFS) and clips shorter than one 400 ms gating block are returned
    unchanged, as the reference does for silence.
    """
    import pyloudnorm

    meter = pyloudnorm.Meter(rate)
    if len(speech) < int(meter.block_size * rate):
        return speech.astype(np.float32)
    loudness = meter.integrated_loudness(speech.astype(np.float64))
    if not np.isfinite(loudness) or abs(loudness) > 100:
        return speech.astype(np.float32)
    gain = 10.0 ** ((target - loudness) / 20.0)
    return (speech * gain).astype(np.float32)


def frame_count(samples: int, rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """Video frames covered by `samples` of audio: int(seconds * fps), as the reference."""
    return int(samples / rate * fps)


class AudioEncoder:
    """wav2vec2 (transformers' `Wav2Vec2Model`) run the reference's way: all layers at 25 fps."""

    def __init__(self, model, feature_extractor, device: torch.device | str = "cpu") -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.feature_extractor = feature_extractor
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, path: Path, device: torch.device | str = "cpu") -> AudioEncoder:
        from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model

        model = Wav2Vec2Model.from_pretrained(str(path), local_files_only=True)
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(str(path), local_files_only=True)
        return cls(model, extractor, device)

    @property
    def layers(self) -> int:
        return self.model.config.num_hidden_layers

    @torch.no_grad()
    def cnn_features(self, speech: np.ndarray, frames: int) -> torch.Tensor:
        """The wav2vec2 CNN features [1, C, frames], resampled from 50 Hz to the video rate."""
        values = self.feature_extractor(speech, sampling_rate=SAMPLE_RATE).input_values
        values = torch.as_tensor(np.asarray(values[0]), dtype=torch.float32, device=self.device)
        dtype = next(self.model.parameters()).dtype
        features = self.model.feature_extractor(values[None].to(dtype))  # [1, C, T50]
        return F.interpolate(features.float(), size=frames, mode="linear", align_corners=True)

    @torch.no_grad()
    def embed(self, speech: np.ndarray, frames: int | None = None) -> torch.Tensor:
        """16 kHz mono speech -> [frames, layers, hidden] float32 on the CPU."""
        frames = frame_count(len(speech)) if frames is None else frames
        if frames < 1:
            raise InputError("the audio is shorter than one video frame (40 ms)")
        model = self.model
        dtype = next(model.parameters()).dtype
        features = self.cnn_features(speech, frames)
        hidden, _ = model.feature_projection(features.transpose(1, 2).to(dtype))
        encoder = model.encoder
        hidden = hidden + encoder.pos_conv_embed(hidden)
        stable = bool(getattr(model.config, "do_stable_layer_norm", False))
        if not stable:
            hidden = encoder.layer_norm(hidden)
        outputs = []
        for layer in encoder.layers:
            hidden = layer(hidden, attention_mask=None)
            hidden = hidden[0] if isinstance(hidden, tuple) else hidden
            outputs.append(hidden)
        if stable:
            outputs[-1] = encoder.layer_norm(outputs[-1])
        return torch.stack(outputs, dim=2)[0].float().cpu()


def frame_windows(
    embedding: torch.Tensor, start: int, count: int, window: int = WINDOW
) -> torch.Tensor:
    """Windows of `window` frames centred on frames start..start+count-1, clamped to the audio.

    embedding [N, layers, C] -> [count, window, layers, C].
    """
    centres = torch.arange(start, start + count)[:, None]
    offsets = torch.arange(window)[None] - window // 2
    index = (centres + offsets).clamp(0, embedding.shape[0] - 1)
    return embedding[index]


def speech_features(audio: AudioInfo, encoder: AudioEncoder) -> tuple[np.ndarray, torch.Tensor]:
    """The whole front end for one recording: (normalised 16 kHz speech, [frames, layers, C])."""
    speech = loudness_normalize(audio.samples(SAMPLE_RATE))
    return speech, encoder.embed(speech)


__all__ = [
    "FPS",
    "SAMPLE_RATE",
    "TARGET_LUFS",
    "AudioEncoder",
    "frame_count",
    "frame_windows",
    "loudness_normalize",
    "speech_features",
]
