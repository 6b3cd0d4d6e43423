"""A tiny random-weight Pocket TTS in the layout `dropreel weights pull pocket-tts` makes.

The real transformers classes (model, codec, feature extractor, a character tokenizer with the
Pocket TTS special tokens and a chat template) at a few thousand parameters, saved with
`save_pretrained` into `<weights_dir>/pocket-tts/{model,codec,voices}`, so the engine loads them
by the same code that loads the published checkpoint.

Next to it, each other language in Kyutai's own format, as the pull downloads it before
converting: a `model.safetensors` with the tensor names and shapes Kyutai's package gives its
model at a matching tiny size (recorded in tests/data/pocket_kyutai_tiny.json; its flow LM has
two layers where the English one has one, as French has 24 where English has 6), filled with
random values, and a SentencePiece `tokenizer.model` trained on a few sentences.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from gpu.speech.spec import (
    KYUTAI_LANGUAGES,
    POCKET_CODEC,
    POCKET_MODEL,
    POCKET_VOICES,
    VOICE_FILES,
    PocketLanguage,
)
from gpu.weights import Places
from tests.helpers import wav

KYUTAI_TINY = Path(__file__).parent / "data" / "pocket_kyutai_tiny.json"
CORPUS = [
    "Bonjour à tous, voici une petite voix qui parle français.",
    "Le chat est sur la table; il dort très bien, merci !",
    "Guten Tag, das ist eine kleine Stimme. Hola, ¿qué tal? Olá, tudo bem? Ciao, come stai?",
    "Hello there. This is a tiny voice, and it keeps going a while.",
]

SPECIAL = {
    "audio_prompt_bos_token": "<voice_bos>",
    "audio_prompt_token": "<voice>",
    "audio_latent_token": "<audio>",
    "audio_bos_token": "<audio_bos>",
}
TEMPLATE = (
    "{% for m in messages %}{% for c in m['content'] %}"
    "{% if c['type'] == 'audio' %}<voice_bos><voice>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endfor %}<audio_bos>"
)


def build(weights_dir: Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        PocketTTSAudioTokenizerConfig,
        PocketTTSAudioTokenizerModel,
        PocketTTSConfig,
        PocketTTSFeatureExtractor,
        PocketTTSForConditionalGeneration,
        PreTrainedTokenizerFast,
    )

    torch.manual_seed(seed)
    places = Places(weights_dir=str(weights_dir))
    letters = "abcdefghijklmnopqrstuvwxyz"
    chars = [*letters, *letters.upper(), *"0123456789 .,!?;:'-\""]
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>", "<pad>", *chars])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="<unk>",
        pad_token="<pad>",
        padding_side="left",
        extra_special_tokens=SPECIAL,
    )
    tokenizer.chat_template = TEMPLATE
    ids = tokenizer.convert_tokens_to_ids(list(SPECIAL.values()))

    codec_config = PocketTTSAudioTokenizerConfig(
        hidden_size=16,
        num_filters=4,
        upsampling_ratios=[4, 4],
        num_hidden_layers=1,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        upsample_groups=16,
        latent_stride=15,
        latent_dim=8,
    )
    codec = PocketTTSAudioTokenizerModel(codec_config).eval()
    config = PocketTTSConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        latent_dim=8,
        pad_token_id=vocab["<pad>"],
        audio_prompt_bos_token_id=ids[0],
        audio_prompt_token_id=ids[1],
        audio_latent_token_id=ids[2],
        audio_bos_token_id=ids[3],
        frame_rate=codec_config.frame_rate,
        flow_head_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "latent_dim": 8,
            "condition_dim": 32,
        },
    )
    model = PocketTTSForConditionalGeneration(config).eval()

    model_dir = places.folder(POCKET_MODEL)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    (model_dir / "chat_template.jinja").write_text(TEMPLATE)
    PocketTTSFeatureExtractor(sampling_rate=24_000).save_pretrained(model_dir)
    codec.save_pretrained(places.folder(POCKET_CODEC))
    for path in VOICE_FILES.values():
        voice = places.folder(POCKET_VOICES) / path
        voice.parent.mkdir(parents=True, exist_ok=True)
        voice.write_bytes(wav(2.0, rate=24_000, seed=seed + 1))
    tokenizer = sentencepiece_model()
    for language in KYUTAI_LANGUAGES:
        build_kyutai(places, language, tokenizer, seed)
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
    places: Places, language: PocketLanguage, tokenizer: bytes, seed: int = 0, **extra
) -> None:
    """`language` in Kyutai's layout, where the pull puts it: random values, recorded names."""
    import sentencepiece
    import torch
    from safetensors.torch import save_file

    tokenizer_path = places.folder(language.tokenizer) / language.tokenizer.patterns[0]
    tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer_path.write_bytes(tokenizer)
    pieces = sentencepiece.SentencePieceProcessor(model_proto=tokenizer).vocab_size()
    shapes = json.loads(KYUTAI_TINY.read_text())["tensors"]
    shapes["flow_lm.conditioner.embed.weight"][0] = pieces + 1  # Kyutai: n_bins + a padding row
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: torch.randn(shape, generator=generator) * 0.1 for k, shape in shapes.items()}
    tensors["flow_lm.emb_std"] = tensors["flow_lm.emb_std"].abs() + 1.0
    tensors.update(extra)
    checkpoint = places.folder(language.model) / language.model.patterns[0]
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(checkpoint))
