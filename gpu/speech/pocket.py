"""Pocket TTS (Kyutai), through the transformers classes that ship with the installed package.

A 100M-parameter continuous-latent speech model that clones a voice from a few seconds of audio.
The voice (a preset recording or the job's sample) is encoded once into latents and given to
every chunk, with the same seed, so a long script keeps one voice. Each chunk is one `generate`
call with the makers' frame budget; `gpu/speech/join.py` levels and joins the results.

The processor is put together from its parts (tokenizer, feature extractor, codec), each read
from the folder `dropreel weights pull pocket-tts` fills: the published processor_config names
the codec by Hub repo id, which an offline loader cannot resolve.

Every language, English included, loads by the same code from the folder its pull converted from
Kyutai's format (gpu/speech/pocket_convert.py). English is loaded when the engine starts; another
language the first time a script asks for it, and kept for the next jobs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gpu.engine import Progress
from gpu.errors import WeightsMissing
from gpu.media import load_audio
from gpu.speech.engine import SpeechPlan, SpeechRequest, plan_speech
from gpu.speech.join import finish
from gpu.speech.pocket_convert import MARKER
from gpu.speech.spec import (
    KYUTAI_LANGUAGES,
    POCKET,
    POCKET_LANGUAGES,
    POCKET_VOICES,
    VOICE_FILES,
    PocketLanguage,
)
from gpu.weights import Places, locate, pull_command

RATE = 24_000
KYUTAI = {language.code: language for language in KYUTAI_LANGUAGES}
VOICE_SECONDS = 30.0  # the longest stretch of a voice sample that is listened to


@dataclass
class Loaded:
    """One language's model and processor, loaded once."""

    model: Any
    processor: Any


class PocketSpeechEngine:
    name = POCKET.name
    preview = False

    def load(self) -> None:
        """English now (it is the default); another language when a script first asks for it."""
        import torch

        self.places = Places.from_settings()
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        fix = pull_command(self.name)
        self.voices_dir = locate(POCKET_VOICES, self.places, fix, f"the {self.name} preset voices")
        self.languages: dict[str, Loaded] = {}
        self._language(POCKET_LANGUAGES[0])

    def _language(self, code: str) -> Loaded:
        if code not in self.languages:
            self.languages[code] = self._load(*self._folders(code), KYUTAI[code])
        return self.languages[code]

    def _folders(self, code: str) -> tuple[Path, Path]:
        """The model and codec folders of a language, offline; WeightsMissing naming the pull."""
        language = KYUTAI[code]
        fix = pull_command(self.name) + ("" if language.always else f" --language {code}")
        root = Path(self.places.weights_dir or ".").expanduser() / language.converted
        if not (root / "model" / MARKER).exists():
            raise WeightsMissing(
                f"the {self.name} {code} model is not in {root}: run `{fix}` on a machine with "
                "network access (it downloads Kyutai's checkpoint and converts it once)"
            )
        return root / "model", root / "codec"

    def _load(self, model_dir: Path, codec_dir: Path, language: PocketLanguage) -> Loaded:
        from transformers import (
            AutoTokenizer,
            PocketTTSAudioTokenizerModel,
            PocketTTSFeatureExtractor,
            PocketTTSForConditionalGeneration,
            PocketTTSProcessor,
        )

        model = PocketTTSForConditionalGeneration.from_pretrained(model_dir).to(self.device).eval()
        codec = PocketTTSAudioTokenizerModel.from_pretrained(codec_dir).to(self.device).eval()
        frames = language.frames_after_eos
        processor = PocketTTSProcessor(
            PocketTTSFeatureExtractor.from_pretrained(model_dir),
            AutoTokenizer.from_pretrained(model_dir),
            audio_tokenizer=codec,
            chat_template=(model_dir / "chat_template.jinja").read_text(),
            **(
                {"frames_after_eos": frames, "frames_after_eos_short_text": frames}
                if frames
                else {}
            ),
        )
        return Loaded(model, processor)

    def check_inputs(self, request: SpeechRequest) -> SpeechPlan:
        return plan_speech(request, self.name, POCKET_LANGUAGES, tuple(VOICE_FILES), RATE)

    def render(self, plan: SpeechPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        import torch

        spoken = self._language(plan.language)
        voice = self._voice(plan, spoken)
        semicolons = KYUTAI[plan.language].remove_semicolons
        for done, chunk in enumerate(plan.chunks, 1):
            torch.manual_seed(plan.seed)
            text = chunk.text.replace(";", ",") if semicolons else chunk.text
            yield finish(self._say(text, voice, spoken), RATE, chunk.pause)
            if progress:
                progress(done, len(plan.chunks))

    def _voice(self, plan: SpeechPlan, spoken: Loaded):
        """The voice as codec latents, encoded once for the whole script."""
        import torch

        sample = plan.request.voice_sample
        path = sample.path if sample is not None else self.voices_dir / VOICE_FILES[plan.voice]
        wave = load_audio(path, RATE, max_seconds=VOICE_SECONDS)
        codec = spoken.processor.audio_tokenizer
        features = spoken.processor.feature_extractor(wave, sampling_rate=RATE, return_tensors="pt")
        with torch.no_grad():
            encoded = codec.encode(
                features["input_values"].to(self.device, codec.dtype),
                features["padding_mask"].to(self.device),
            )
        return encoded.latents[0][encoded.latents_mask[0].bool()].float().cpu()

    def _say(self, text: str, voice, spoken: Loaded) -> np.ndarray:
        import torch

        conversation = [
            {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": text}]}
        ]
        processor = spoken.processor
        prompt = processor.apply_chat_template(conversation, tokenize=False)
        inputs = processor(text=prompt, audio_prompt_latents=[voice], return_tensors="pt")
        with torch.no_grad():
            out = spoken.model.generate(**inputs.to(self.device), return_dict_in_generate=True)
        waves = processor.decode(out.audio_latents, out.audio_latents_mask)
        return waves[0].numpy()
