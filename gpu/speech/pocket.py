"""Pocket TTS (Kyutai), through the transformers classes that ship with the installed package.

A 100M-parameter continuous-latent speech model that clones a voice from a few seconds of audio.
The voice (a preset recording or the job's sample) is encoded once into latents and given to
every chunk, with the same seed, so a long script keeps one voice. Each chunk is one `generate`
call with the makers' frame budget; `gpu/speech/join.py` levels and joins the results.

The processor is put together from its parts (tokenizer, feature extractor, codec), each read
from the folder `dropreel weights pull pocket-tts` fills: the published processor_config names
the codec by Hub repo id, which an offline loader cannot resolve.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from gpu.engine import Progress
from gpu.media import load_audio
from gpu.speech.engine import SpeechPlan, SpeechRequest, plan_speech
from gpu.speech.join import finish
from gpu.speech.spec import (
    POCKET,
    POCKET_CODEC,
    POCKET_LANGUAGES,
    POCKET_MODEL,
    POCKET_VOICES,
    VOICE_FILES,
)
from gpu.weights import Places, locate, pull_command

RATE = 24_000
VOICE_SECONDS = 30.0  # the longest stretch of a voice sample that is listened to


class PocketSpeechEngine:
    name = POCKET.name
    preview = False

    def load(self) -> None:
        import torch
        from transformers import (
            AutoTokenizer,
            PocketTTSAudioTokenizerModel,
            PocketTTSFeatureExtractor,
            PocketTTSForConditionalGeneration,
            PocketTTSProcessor,
        )

        places = Places.from_settings()
        fix = pull_command(self.name)
        model_dir = locate(POCKET_MODEL, places, fix, f"the {self.name} model")
        codec_dir = locate(POCKET_CODEC, places, fix, f"the {self.name} audio codec")
        self.voices_dir = locate(POCKET_VOICES, places, fix, f"the {self.name} preset voices")
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = PocketTTSForConditionalGeneration.from_pretrained(model_dir).to(self.device)
        self.model.eval()
        codec = PocketTTSAudioTokenizerModel.from_pretrained(codec_dir).to(self.device).eval()
        template = model_dir / "chat_template.jinja"
        self.processor = PocketTTSProcessor(
            PocketTTSFeatureExtractor.from_pretrained(model_dir),
            AutoTokenizer.from_pretrained(model_dir),
            audio_tokenizer=codec,
            chat_template=template.read_text() if template.exists() else None,
        )

    def check_inputs(self, request: SpeechRequest) -> SpeechPlan:
        return plan_speech(request, self.name, POCKET_LANGUAGES, tuple(VOICE_FILES), RATE)

    def render(self, plan: SpeechPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        import torch

        voice = self._voice(plan)
        for done, chunk in enumerate(plan.chunks, 1):
            torch.manual_seed(plan.seed)
            yield finish(self._say(chunk.text, voice), RATE, chunk.pause)
            if progress:
                progress(done, len(plan.chunks))

    def _voice(self, plan: SpeechPlan):
        """The voice as codec latents, encoded once for the whole script."""
        import torch

        sample = plan.request.voice_sample
        path = sample.path if sample is not None else self.voices_dir / VOICE_FILES[plan.voice]
        wave = load_audio(path, RATE, max_seconds=VOICE_SECONDS)
        codec = self.processor.audio_tokenizer
        features = self.processor.feature_extractor(wave, sampling_rate=RATE, return_tensors="pt")
        with torch.no_grad():
            encoded = codec.encode(
                features["input_values"].to(self.device, codec.dtype),
                features["padding_mask"].to(self.device),
            )
        return encoded.latents[0][encoded.latents_mask[0].bool()].float().cpu()

    def _say(self, text: str, voice) -> np.ndarray:
        import torch

        conversation = [
            {"role": "user", "content": [{"type": "audio"}, {"type": "text", "text": text}]}
        ]
        prompt = self.processor.apply_chat_template(conversation, tokenize=False)
        inputs = self.processor(text=prompt, audio_prompt_latents=[voice], return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**inputs.to(self.device), return_dict_in_generate=True)
        waves = self.processor.decode(out.audio_latents, out.audio_latents_mask)
        return waves[0].numpy()
