"""The speech engines' records: what they speak, where their weights come from, their licences.

Read by routing, the Modal app (one class per registered engine), `dropreel weights` and tests
without importing torch. Pocket TTS's facts come from Kyutai's published model card and package
(MIT code, CC-BY-4.0 weights). Every language, English included, is Kyutai's own checkpoint at
the files and commits Kyutai's package pins in its per-language configs (kyutai-labs/pocket-tts,
pocket_tts/config/*.yaml at commit 9514983; English is `english.yaml`, the package's default),
and `dropreel weights pull pocket-tts [--language L]` converts each once into the transformers
layout (gpu/speech/pocket_convert.py), so every language loads through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

from gpu.registry import EngineSpec
from gpu.speech.engine import SPEECH
from gpu.weights import WeightSource

KYUTAI_MODEL_REPO = "kyutai/pocket-tts"
KYUTAI_MODEL_REVISION = "39592ff23c9ef80098bb74895d104c26275fe2c9"
"""kyutai/pocket-tts commit of every language's model.safetensors (Kyutai's configs pin it)."""
KYUTAI_TOKENIZER_REPO = "kyutai/pocket-tts-without-voice-cloning"
KYUTAI_TOKENIZER_REVISION = "d29db7978e464fb90cb3359ee0c69a273b9142cc"
"""Commit of every language's tokenizer.model (Kyutai's configs pin it)."""


@dataclass(frozen=True)
class PocketLanguage:
    """One language of Pocket TTS: where its checkpoint is and what its makers' config says."""

    code: str
    checkpoint: str
    """Kyutai's name for it: the folder `languages/<checkpoint>/` in its repos."""
    size_gb: float
    remove_semicolons: bool = False
    """Kyutai's config reads ";" as "," for this language (`remove_semicolons: true`)."""
    frames_after_eos: int | None = None
    """Frames generated after the end of speech that Kyutai recommends, where it names one."""
    always: bool = False
    """Pulled by every pull, not only `--language`: the engine loads it when it starts."""

    @property
    def model(self) -> WeightSource:
        """Kyutai's checkpoint (the flow LM and the codec in one file); converted after the pull."""
        return self._kyutai(
            "model",
            KYUTAI_MODEL_REPO,
            KYUTAI_MODEL_REVISION,
            "model.safetensors",
            self.size_gb,
            note="gated: accept the terms on huggingface.co/kyutai/pocket-tts and set HF_TOKEN",
            convert="gpu.speech.pocket_convert:convert_language",
        )

    @property
    def tokenizer(self) -> WeightSource:
        """Kyutai's SentencePiece model for the language."""
        return self._kyutai(
            "tokenizer", KYUTAI_TOKENIZER_REPO, KYUTAI_TOKENIZER_REVISION, "tokenizer.model", 0.001
        )

    def _kyutai(
        self, part: str, repo: str, revision: str, file: str, size_gb: float, **extra: str
    ) -> WeightSource:
        return WeightSource(
            repo_id=repo,
            revision=revision,
            patterns=(f"languages/{self.checkpoint}/{file}",),
            size_gb=size_gb,
            profiles=None if self.always else (self.code,),
            folder=f"pocket-tts/{self.code}/kyutai-{part}",
            name=f"pocket-tts {self.code} {part} (Kyutai format)",
            license="CC-BY-4.0",
            **extra,
        )

    @property
    def converted(self) -> str:
        """Where the conversion writes `model/` and `codec/`, under DROPREEL_WEIGHTS_DIR."""
        return f"pocket-tts/{self.code}"


KYUTAI_LANGUAGES = (
    PocketLanguage("en", "english", 0.5, always=True),  # the default: first
    # French: Kyutai publishes only a 24-layer model ("french" is refused by its package).
    PocketLanguage("fr", "french_24l", 1.7, remove_semicolons=True, frames_after_eos=8),
    PocketLanguage("de", "german", 0.5, remove_semicolons=True),
    PocketLanguage("es", "spanish", 0.5),
    PocketLanguage("it", "italian", 0.5),
    PocketLanguage("pt", "portuguese", 0.5),
)
"""Every language, converted from Kyutai's format (6-layer models where Kyutai has them)."""
POCKET_LANGUAGES = tuple(language.code for language in KYUTAI_LANGUAGES)
"""Every language pocket-tts speaks; the first is the default."""
VOICE_FILES = {
    "alba": "alba-mackenna/casual.wav",
    "estelle": "unmute-prod-website/developpeuse-3.wav",
}
"""Preset voice -> its recording in kyutai/tts-voices (the paths Kyutai's package names)."""

POCKET_VOICES = WeightSource(
    repo_id="kyutai/tts-voices",
    revision="1fc7395b7e012e2bbebfca14b942a4ef62ccc899",
    patterns=tuple(VOICE_FILES.values()),
    size_gb=0.01,
    folder="pocket-tts/voices",
    name="pocket-tts preset voices",
    note="licence of the voice recordings not confirmed offline",
)

POCKET = EngineSpec(
    name="pocket-tts",
    kinds=(SPEECH,),
    target="gpu.speech.pocket:PocketSpeechEngine",
    gpu="T4",
    gpu_fallbacks=("L4", "A10G"),
    gpu_memory_gib=2,
    description="Kyutai Pocket TTS: 100M-parameter speech, voice cloning from a short sample.",
    license="MIT code, CC-BY-4.0 weights (attribute Kyutai)",
    license_url="https://huggingface.co/kyutai/pocket-tts",
    max_render_seconds=1800,
    weights=(
        POCKET_VOICES,
        *(s for language in KYUTAI_LANGUAGES for s in (language.model, language.tokenizer)),
    ),
)
SPEECH_PREVIEW = EngineSpec(
    name="speech-preview",
    kinds=(SPEECH,),
    target="gpu.speech.preview:SpeechPreviewEngine",
    preview=True,
    description="CPU preview speech, no weights: a hum per word in the script's rhythm.",
    license="Apache-2.0 (dropreel's own code)",
)
SPEECH_ENGINES = (POCKET, SPEECH_PREVIEW)
