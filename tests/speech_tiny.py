"""A tiny random-weight Pocket TTS in the layout `dropreel weights pull pocket-tts` makes.

The real transformers classes (model, codec, feature extractor, a character tokenizer with the
Pocket TTS special tokens and a chat template) at a few thousand parameters, saved with
`save_pretrained` into `<weights_dir>/pocket-tts/{model,codec,voices}`, so the engine loads them
by the same code that loads the published checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from gpu.speech.spec import POCKET_CODEC, POCKET_MODEL, POCKET_VOICES, VOICE_FILES
from gpu.weights import Places
from tests.helpers import wav

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
    return weights_dir
