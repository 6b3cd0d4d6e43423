"""The speech engine interface: the video engines' shape, with audio chunks for frames.

`load()` once per process; `check_inputs(SpeechRequest) -> SpeechPlan` resolves language, voice
and chunks and raises `InputError` before any compute; `render(plan, progress)` yields one
float waveform per chunk, already levelled, faded and followed by its pause (gpu/speech/join.py),
so the concatenation of what it yields is the speech.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from gpu.engine import Progress
from gpu.errors import InputError
from gpu.speech.script import Chunk, chunks

if TYPE_CHECKING:
    from gpu.media import AudioInfo

SPEECH = "speech"
"""The kind speech engines declare in their EngineSpec: no video job kind routes to them."""


@dataclass(frozen=True)
class SpeechRequest:
    """What a script job asks for: the text, and optionally a voice sample, preset or language."""

    text: str
    voice_sample: AudioInfo | None = None
    voice: str | None = None
    language: str | None = None
    seed: int | None = None


@dataclass(kw_only=True)
class SpeechPlan:
    """A speech request resolved against an engine; `describe()` is what status.json shows."""

    request: SpeechRequest
    language: str
    voice: str  # a preset's name, or "sample" for the job's own voice sample
    chunks: list[Chunk]
    sample_rate: int
    seed: int
    adjustments: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "language": self.language,
            "voice": self.voice,
            "chunks": len(self.chunks),
            "characters": sum(len(c.text) for c in self.chunks),
            "sample_rate": self.sample_rate,
            "seed": self.seed,
        }


class SpeechEngine(Protocol):
    """The shape of a speech engine; gpu/speech/preview.py is the smallest complete one."""

    name: str
    preview: bool

    def load(self) -> None: ...
    def check_inputs(self, request: SpeechRequest) -> SpeechPlan: ...
    def render(
        self, plan: SpeechPlan, progress: Progress | None = None
    ) -> Iterator[np.ndarray]: ...


def plan_speech(
    request: SpeechRequest,
    engine: str,
    languages: tuple[str, ...],
    voices: tuple[str, ...],
    sample_rate: int,
) -> SpeechPlan:
    """The plan every speech engine makes: language and voice checked, the script chunked.

    `languages[0]` and `voices[0]` are the defaults. A voice sample wins over the default preset;
    naming a preset as well as dropping a sample is refused (which one was meant?).
    """
    language = request.language or languages[0]
    if language not in languages:
        raise InputError(
            f"{engine} does not speak language {language!r}; it speaks {', '.join(languages)}: "
            "fix the language field"
        )
    if request.voice and request.voice_sample is not None:
        raise InputError(
            f"prompt.json names the voice {request.voice!r} and a voice sample was dropped too: "
            "keep one"
        )
    if request.voice and request.voice not in voices:
        raise InputError(
            f"{engine} has no voice {request.voice!r}; its voices are {', '.join(voices)}: fix "
            "the voice field, or drop a voice sample (<name>.voice.wav) to speak in"
        )
    voice = "sample" if request.voice_sample is not None else request.voice or voices[0]
    seed = request.seed if request.seed is not None else 0
    return SpeechPlan(
        request=request,
        language=language,
        voice=voice,
        chunks=chunks(request.text, language),
        sample_rate=sample_rate,
        seed=seed,
    )
