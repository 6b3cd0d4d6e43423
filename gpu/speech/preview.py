"""Preview speech: no model and no weights, a hum per word in the rhythm of the script.

It lets a script job run end to end anywhere (`dropreel demo`, CI, a laptop): the talking-head
stage gets a track whose words and pauses follow the script, so timing and lip motion can be
judged before a real speech engine is set up.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import numpy as np

from gpu.engine import Progress
from gpu.speech.engine import SpeechPlan, SpeechRequest, plan_speech
from gpu.speech.join import finish

RATE = 24_000
LANGUAGES = ("en", "fr", "de", "es", "it", "pt")
VOICES = {"low": 140.0, "high": 220.0}  # preset -> pitch in Hz
SECONDS_PER_LETTER = 0.06
WORD_GAP = 0.06


class SpeechPreviewEngine:
    name = "speech-preview"
    preview = True

    def load(self) -> None:
        """Nothing to load."""

    def check_inputs(self, request: SpeechRequest) -> SpeechPlan:
        return plan_speech(request, self.name, LANGUAGES, tuple(VOICES), RATE)

    def render(self, plan: SpeechPlan, progress: Progress | None = None) -> Iterator[np.ndarray]:
        pitch = self._pitch(plan)
        for done, chunk in enumerate(plan.chunks, 1):
            yield finish(self._hum(chunk.text, pitch), RATE, chunk.pause)
            if progress:
                progress(done, len(plan.chunks))

    @staticmethod
    def _pitch(plan: SpeechPlan) -> float:
        sample = plan.request.voice_sample
        if sample is None:
            return VOICES[plan.voice]
        return 120.0 + zlib.crc32(sample.path.name.encode()) % 120  # a sample's own hum

    @staticmethod
    def _hum(text: str, pitch: float) -> np.ndarray:
        parts = []
        for i, word in enumerate(text.split()):
            n = int(max(2, len(word)) * SECONDS_PER_LETTER * RATE)
            t = np.arange(n, dtype=np.float32) / RATE
            envelope = np.sin(np.pi * np.arange(n) / n).astype(np.float32)
            tone = np.sin(2 * np.pi * pitch * (1 + 0.05 * (i % 3)) * t) * envelope
            parts += [tone.astype(np.float32), np.zeros(int(WORD_GAP * RATE), np.float32)]
        return np.concatenate(parts[:-1]) if parts else np.zeros(0, np.float32)
