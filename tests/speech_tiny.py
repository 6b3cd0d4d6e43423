"""A tiny random-weight Pocket TTS, as `dropreel weights pull pocket-tts` downloads and converts it.

Every language in Kyutai's own format, where the pull puts it: a `model.safetensors` with the
tensor names and shapes Kyutai's package gives its model at a matching tiny size (recorded in
tests/data/pocket_kyutai_tiny.json, with the transformers config of that size; the English flow
LM has one layer where the others have two, as English has 6 where French has 24), filled with
random values, and a SentencePiece `tokenizer.model` trained on a few sentences. `build` then runs
the pull's own conversion, so the engine loads the real transformers classes converted by the
real code, with the preset voices next to them.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from gpu.speech.spec import KYUTAI_LANGUAGES, POCKET_VOICES, VOICE_FILES, PocketLanguage
from gpu.weights import Places
from tests.helpers import wav

KYUTAI_TINY = Path(__file__).parent / "data" / "pocket_kyutai_tiny.json"
CORPUS = [
    "Bonjour à tous, voici une petite voix qui parle français.",
    "Le chat est sur la table; il dort très bien, merci !",
    "Guten Tag, das ist eine kleine Stimme. Hola, ¿qué tal? Olá, tudo bem? Ciao, come stai?",
    "Hello there. This is a tiny voice, and it keeps going a while.",
]


def configs() -> dict:
    """The converter's transformers configs at the tiny size of the recorded checkpoint."""
    from gpu.speech.pocket_convert import CONFIGS

    tiny = json.loads(KYUTAI_TINY.read_text())["configs"]
    return {part: {**CONFIGS[part], **tiny[part]} for part in CONFIGS}


def build(weights_dir: Path, seed: int = 0) -> Path:
    """Every language downloaded and converted, and the preset voices, under `weights_dir`."""
    from gpu.speech.pocket_convert import convert_language

    places = Places(weights_dir=str(weights_dir))
    for path in VOICE_FILES.values():
        voice = places.folder(POCKET_VOICES) / path
        voice.parent.mkdir(parents=True, exist_ok=True)
        voice.write_bytes(wav(2.0, rate=24_000, seed=seed + 1))
    tokenizer = sentencepiece_model()
    for language in KYUTAI_LANGUAGES:
        build_kyutai(places, language, tokenizer, seed, flow_layers=1 if language.always else 2)
        convert_language(language.model, places, configs())
    return weights_dir


def sentencepiece_model() -> bytes:
    """A SentencePiece model of a few dozen pieces, as Kyutai's tokenizer.model is one."""
    import sentencepiece

    out = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 4),
        model_writer=out,
        vocab_size=80,
        hard_vocab_limit=False,
        character_coverage=1.0,
        minloglevel=2,
    )
    return out.getvalue()


def build_kyutai(
    places: Places,
    language: PocketLanguage,
    tokenizer: bytes,
    seed: int = 0,
    flow_layers: int = 2,
    **extra,
) -> None:
    """`language` in Kyutai's layout, where the pull puts it: random values, recorded names; the
    flow LM keeps its first `flow_layers` layers."""
    import sentencepiece
    import torch
    from safetensors.torch import save_file

    tokenizer_path = places.folder(language.tokenizer) / language.tokenizer.patterns[0]
    tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer_path.write_bytes(tokenizer)
    pieces = sentencepiece.SentencePieceProcessor(model_proto=tokenizer).vocab_size()
    shapes = json.loads(KYUTAI_TINY.read_text())["tensors"]
    layer = "flow_lm.transformer.layers."
    shapes = {
        k: v
        for k, v in shapes.items()
        if not k.startswith(layer) or int(k.removeprefix(layer).split(".")[0]) < flow_layers
    }
    shapes["flow_lm.conditioner.embed.weight"][0] = pieces + 1  # Kyutai: n_bins + a padding row
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: torch.randn(shape, generator=generator) * 0.1 for k, shape in shapes.items()}
    tensors["flow_lm.emb_std"] = tensors["flow_lm.emb_std"].abs() + 1.0
    tensors.update(extra)
    checkpoint = places.folder(language.model) / language.model.patterns[0]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(checkpoint))
