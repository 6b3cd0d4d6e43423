"""The speech engines' records: what they speak, where their weights come from, their licences.

Read by routing, the Modal app (one class per registered engine), `dropreel weights` and tests
without importing torch. Pocket TTS's facts come from Kyutai's published model card and package
(MIT code, CC-BY-4.0 weights); the transformers-format repos are the ones the installed
transformers names for its Pocket TTS classes. No commit could be confirmed offline, so the
revisions are unpinned (docs/ENGINES.md says so) until an operator pins them.
"""

from __future__ import annotations

from gpu.registry import EngineSpec
from gpu.speech.engine import SPEECH
from gpu.weights import WeightSource

POCKET_LANGUAGES = ("en",)
"""Languages of the transformers-format checkpoint (Kyutai's other five are in its own format)."""
VOICE_FILES = {"alba": "alba-mackenna/casual.wav"}
"""Preset voice -> its recording in kyutai/tts-voices (the one path confirmed offline)."""

POCKET_MODEL = WeightSource(
    repo_id="eustlb/pocket-tts",
    revision=None,
    patterns=(
        "config.json",
        "generation_config.json",
        "*.safetensors",
        "tokenizer*",
        "*.jinja",
        "preprocessor_config.json",
    ),
    size_gb=0.5,
    folder="pocket-tts/model",
    name="pocket-tts model",
    license="CC-BY-4.0",
)
POCKET_CODEC = WeightSource(
    repo_id="eustlb/pocket-tts-audio-tokenizer",
    revision=None,
    patterns=("config.json", "*.safetensors"),
    size_gb=0.1,
    folder="pocket-tts/codec",
    name="pocket-tts codec",
    license="CC-BY-4.0",
)
POCKET_VOICES = WeightSource(
    repo_id="kyutai/tts-voices",
    revision=None,
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
    weights=(POCKET_MODEL, POCKET_CODEC, POCKET_VOICES),
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
