"""Kyutai's per-language Pocket TTS checkpoints, converted into the transformers layout at pull time.

Kyutai publishes every language, English included, in its own format: one `model.safetensors`
holding its flow language model (`flow_lm.*`) and its Mimi codec (`mimi.*`), and a SentencePiece
`tokenizer.model`, at commits its package pins. The transformers classes read another layout.
Converting once, when the weights are pulled, lets rendering load every language by the same
code; nothing is converted at render time.

What the conversion does, and why:
- Renames each tensor to its transformers name (the tables below); a tensor it does not know
  stops the conversion, so nothing of the makers' checkpoint is silently dropped.
- Splits the packed attention projection into q, k and v, and reorders the q and k rows of each
  head: Kyutai's rotary embedding rotates interleaved pairs (0,1), (2,3), ...; transformers'
  rotates the first half of a head against the second.
- Builds the token embeddings from Kyutai's text table (its last row, the padding entry, is never
  looked up) plus the four prompt tokens transformers adds; the voice-BOS token's row is Kyutai's
  learnt vector put before the voice.
- Takes the sizes it cannot read from tensor shapes (heads, widths, epsilons, rope, the codec's
  layout) from `CONFIGS`, written here from Kyutai's configs and transformers' defaults (they
  agree; docs/ENGINES.md cites each value), and reads the layer counts from the checkpoint itself
  (French has 24 layers, English 6). A checkpoint of other sizes is refused, not guessed at.
- Converts the SentencePiece model to a fast tokenizer that encodes exactly as SentencePiece does
  and adds the prompt tokens after it; writes the chat template that prepares the text as
  Kyutai's package does, the feature extractor and Kyutai's sampling defaults.
- Loads the result into the transformers classes and refuses it unless every tensor is used and
  none is missing; then writes `model/` and `codec/` under `<weights dir>/pocket-tts/<language>/`
  through a temporary folder, so an interrupted conversion leaves nothing half-written.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from gpu.errors import EngineError
from gpu.speech.spec import KYUTAI_LANGUAGES, PocketLanguage
from gpu.weights import Places, WeightSource, locate, pull_command

if TYPE_CHECKING:
    import torch

PROMPT_TOKENS = {
    "audio_prompt_token": "<|voice|>",
    "audio_latent_token": "<|audio|>",
    "audio_prompt_bos_token": "<|voice_bos|>",
    "audio_bos_token": "<|audio_bos|>",
}
"""The tokenizer attributes the transformers processor reads -> dropreel's names for them, in the
order of their ids (after Kyutai's pieces, as transformers' default ids 4000-4003 are)."""
CHAT_TEMPLATE = (
    "{%- for message in messages -%}{%- for part in message['content'] -%}"
    "{%- if part['type'] == 'audio' -%}<|voice_bos|><|voice|>"
    "{%- else -%}"
    "{%- set text = part['text'] | replace('\\n', ' ') | replace('\\r', ' ') | trim"
    " | replace('  ', ' ') -%}"
    "{{ text[:1] | upper }}{{ text[1:] }}{{ '.' if text[-1:].isalnum() else '' }}"
    "{%- endif -%}{%- endfor -%}{%- endfor -%}<|audio_bos|>"
)
"""The voice, then the text as Kyutai's `prepare_text_prompt` makes it (one line, a capital first,
a full stop after a last letter or digit), then the first audio position."""
MARKER = "converted-from.json"
"""Written last into a converted folder: what it was made from (a later pull skips the work)."""
LAYOUT = 2
"""The conversion's own version, in the marker: raise it when what it writes changes, so a later
pull converts again (1 took the English config, template and tokens from eustlb/pocket-tts)."""
SAMPLING = {"do_sample": True, "temperature": 0.7, "num_flow_steps": 1, "eos_threshold": -4.0}
"""Kyutai's defaults (pocket_tts/default_parameters.py: temperature, LSD steps, EOS threshold)."""
CONFIGS = {
    "model": {
        "hidden_size": 1024,
        "num_attention_heads": 16,
        "intermediate_size": 4096,
        "latent_dim": 32,
        "layer_norm_eps": 1e-5,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "frame_rate": 12.5,
        "flow_head_config": {"hidden_size": 512, "latent_dim": 32, "condition_dim": 1024},
    },
    "codec": {
        "sampling_rate": 24_000,
        "hidden_size": 512,
        "num_filters": 64,
        "num_residual_layers": 1,
        "upsampling_ratios": [6, 5, 4],
        "kernel_size": 7,
        "residual_kernel_size": 3,
        "last_kernel_size": 3,
        "dilation_growth_rate": 2,
        "pad_mode": "constant",
        "compress": 2,
        "num_attention_heads": 8,
        "num_key_value_heads": 8,
        "intermediate_size": 2048,
        "sliding_window": 250,
        "layer_scale_initial_scale": 0.01,
        "upsample_groups": 512,
        "latent_stride": 16,
        "latent_dim": 32,
    },
}
"""The transformers config of every Kyutai language but its layer counts: Kyutai's yaml values
(the same in each language's config at 9514983), equal to transformers' defaults; the sources of
each value are in docs/ENGINES.md. Tests pass a tiny one."""

_LAYER = {
    "self_attn.out_proj.weight": "self_attn.o_proj.weight",
    "norm1.weight": "input_layernorm.weight",
    "norm1.bias": "input_layernorm.bias",
    "norm2.weight": "post_attention_layernorm.weight",
    "norm2.bias": "post_attention_layernorm.bias",
    "linear1.weight": "mlp.fc1.weight",
    "linear2.weight": "mlp.fc2.weight",
    "layer_scale_1.scale": "self_attn_layer_scale.scale",
    "layer_scale_2.scale": "mlp_layer_scale.scale",
}
"""A transformer layer's tensors, Kyutai name -> transformers name (flow LM and codec alike)."""
_MODEL = {
    "flow_lm.bos_emb": "model.bos_latent",
    "flow_lm.speaker_proj_weight": "model.audio_prompt_proj.weight",
    "flow_lm.input_linear.weight": "model.audio_latent_proj.weight",
    "flow_lm.emb_mean": "latent_mean",
    "flow_lm.emb_std": "latent_std",
    "flow_lm.out_norm.weight": "model.norm.weight",
    "flow_lm.out_norm.bias": "model.norm.bias",
    "flow_lm.out_eos.weight": "eos_head.weight",
    "flow_lm.out_eos.bias": "eos_head.bias",
}
_FLOW_HEAD = (
    ("flow_lm.flow_net.", "flow_head."),
    ("time_embed.", "timestep_embeddings."),
    ("res_blocks.", "layers."),
    ("cond_embed.", "cond_proj."),
    (".in_ln.", ".norm."),
    (".mlp.0.", ".fc1."),
    (".mlp.2.", ".fc2."),
    (".mlp.3.alpha", ".norm.weight"),
    (".adaLN_modulation.1.", ".adaln_proj."),
    ("final_layer.linear.", "final_layer.proj."),
)
"""The flow head's tensors: these replacements, in order, on Kyutai's names."""
_EMBEDDINGS = {"flow_lm.conditioner.embed.weight", "flow_lm.bos_before_voice"}
"""Kyutai's tensors that make up the token embeddings together (see `_embeddings`)."""
_CODEC = {
    "mimi.downsample.conv.conv.weight": "encoder.downsample.conv.weight",
    "mimi.upsample.convtr.convtr.weight": "decoder.upsample.conv.weight",
    "mimi.quantizer.output_proj.weight": "latent_proj.weight",
}
_SEANET = (
    ("mimi.encoder.model.", "encoder.encoder_seanet.layers."),
    ("mimi.decoder.model.", "decoder.decoder_seanet.layers."),
    (".convtr.", ".conv."),
)
"""The codec's convolution stacks: these replacements, in order, on Kyutai's names."""
_TRANSFORMERS = {
    "flow_lm.transformer.layers.": "model.layers.",
    "mimi.encoder_transformer.transformer.layers.": "encoder.encoder_transformer.layers.",
    "mimi.decoder_transformer.transformer.layers.": "decoder.decoder_transformer.layers.",
}
"""Where each of Kyutai's transformers lives in the transformers classes."""


class ConversionFailed(EngineError):
    """Kyutai's checkpoint does not map onto the transformers classes; the message says where."""

    permanent = True


def language_of(source: WeightSource) -> PocketLanguage:
    """The language whose Kyutai checkpoint `source` is."""
    for language in KYUTAI_LANGUAGES:
        if source in (language.model, language.tokenizer):
            return language
    raise ConversionFailed(f"{source.label} is not a Pocket TTS language checkpoint")


def convert_language(source: WeightSource, places: Places, configs: dict | None = None) -> Path:
    """`dropreel weights pull` hook: convert the pulled language once; returns its folder."""
    language = language_of(source)
    fix = pull_command("pocket-tts") + ("" if language.always else f" --language {language.code}")
    checkpoint = locate(language.model, places, fix) / language.model.patterns[0]
    tokenizer = locate(language.tokenizer, places, fix) / language.tokenizer.patterns[0]
    out = Path(places.weights_dir or ".").expanduser() / language.converted
    origin = {
        "layout": LAYOUT,
        "language": language.code,
        "model": f"{language.model.repo_id}@{language.model.ref}/{language.model.patterns[0]}",
        "tokenizer": f"{language.tokenizer.repo_id}@{language.tokenizer.ref}/"
        f"{language.tokenizer.patterns[0]}",
    }
    marker = out / "model" / MARKER
    if marker.exists() and json.loads(marker.read_text()) == origin:
        return out
    convert(checkpoint, tokenizer, out, origin, configs or CONFIGS)
    return out


def convert(
    checkpoint: Path, tokenizer_model: Path, out: Path, origin: dict, configs: dict
) -> None:
    """Kyutai's `checkpoint` + `tokenizer_model` -> `out/model` and `out/codec` (transformers)."""
    from safetensors.torch import load_file
    from transformers import PocketTTSFeatureExtractor

    tensors = load_file(str(checkpoint))
    other = sorted(k for k in tensors if not k.startswith(("flow_lm.", "mimi.")))
    if other:
        raise ConversionFailed(
            f"Kyutai's checkpoint has tensors outside its flow LM and codec ({', '.join(other[:5])}): "
            "its format changed; pull the revision dropreel pins"
        )
    work = out / ".converting"
    shutil.rmtree(work, ignore_errors=True)
    tokenizer = fast_tokenizer(tokenizer_model)
    _save_model(tensors, tokenizer, configs["model"], work / "model")
    codec = _save_codec(tensors, configs["codec"], work / "codec")
    PocketTTSFeatureExtractor(
        sampling_rate=codec.sampling_rate,
        frame_size=codec.frame_size,
        pad_to_multiple_of=codec.frame_size,
    ).save_pretrained(work / "model")
    (work / "model" / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    (work / "model" / MARKER).write_text(json.dumps(origin, indent=2))
    for part in ("codec", "model"):  # model last: its marker says the whole is complete
        shutil.rmtree(out / part, ignore_errors=True)
        (work / part).rename(out / part)
    work.rmdir()


def fast_tokenizer(tokenizer_model: Path):
    """Kyutai's SentencePiece model as a fast tokenizer with the prompt tokens after it."""
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import SentencePieceExtractor, SpmConverter

    extractor = SentencePieceExtractor(str(tokenizer_model))
    pieces = extractor.extract(Unigram)
    core = SpmConverter.build_tokenizer_from_spm_proto(proto=extractor.proto, vocab=pieces["vocab"])
    spec = extractor.proto.trainer_spec
    ids = extractor.proto.pieces
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token=ids[spec.unk_id].piece,
        pad_token=ids[spec.pad_id].piece if spec.pad_id >= 0 else None,
        padding_side="left",  # dropreel speaks one chunk at a time: no padding is ever added
        extra_special_tokens=PROMPT_TOKENS,
    )


def _save_model(tensors: dict, tokenizer, sizes: dict, where: Path) -> None:
    from transformers import GenerationConfig, PocketTTSConfig, PocketTTSForConditionalGeneration

    kyutai = {k: v for k, v in tensors.items() if k.startswith("flow_lm.")}
    config = json.loads(json.dumps(sizes))  # a deep copy
    heads = int(config["num_attention_heads"])
    state = _renamed(kyutai, _MODEL, _FLOW_HEAD, heads, skip=_EMBEDDINGS)
    ids = {
        name: tokenizer.convert_tokens_to_ids(getattr(tokenizer, name)) for name in PROMPT_TOKENS
    }
    state["model.embed_tokens.weight"] = _embeddings(kyutai, len(tokenizer), ids)
    config.update(
        vocab_size=len(tokenizer),
        num_hidden_layers=_count(kyutai, r"flow_lm\.transformer\.layers\.(\d+)\."),
        **{f"{name}_id": token_id for name, token_id in ids.items()},
    )
    if tokenizer.pad_token_id is not None:
        config["pad_token_id"] = tokenizer.pad_token_id
    config["flow_head_config"] = {
        **config.get("flow_head_config", {}),
        "num_hidden_layers": _count(kyutai, r"flow_lm\.flow_net\.res_blocks\.(\d+)\."),
    }
    model = PocketTTSForConditionalGeneration(PocketTTSConfig(**config))
    _load_exactly(model, state, "model", ignore=model._keys_to_ignore_on_load_missing)
    model.generation_config = GenerationConfig(**SAMPLING, pad_token_id=config.get("pad_token_id"))
    model.save_pretrained(where)
    tokenizer.save_pretrained(where)


def _save_codec(tensors: dict, sizes: dict, where: Path):
    """The codec written to `where`; returns its config."""
    from transformers import PocketTTSAudioTokenizerConfig, PocketTTSAudioTokenizerModel

    kyutai = {k: v for k, v in tensors.items() if k.startswith("mimi.")}
    config = json.loads(json.dumps(sizes))
    heads = int(config["num_attention_heads"])
    state = _renamed(kyutai, _CODEC, _SEANET, heads)
    config["num_hidden_layers"] = _count(
        kyutai, r"mimi\.encoder_transformer\.transformer\.layers\.(\d+)\."
    )
    codec = PocketTTSAudioTokenizerModel(PocketTTSAudioTokenizerConfig(**config))
    _load_exactly(codec, state, "codec", ignore=())
    codec.save_pretrained(where)
    return codec.config


def _renamed(
    kyutai: dict,
    exact: dict[str, str],
    replacements: tuple[tuple[str, str], ...],
    heads: int,
    skip: frozenset[str] | set[str] = frozenset(),
) -> dict:
    """Every Kyutai tensor under its transformers name.

    A name the tables do not cover comes out of `replacements` as a name the transformers class
    does not have, which `_load_exactly` refuses: no tensor is dropped silently.
    """
    state = {}
    for key, tensor in kyutai.items():
        if key in skip:
            continue
        if key in exact:
            state[exact[key]] = tensor
            continue
        layer = next((p for p in _TRANSFORMERS if key.startswith(p)), None)
        if layer:
            index, _, rest = key.removeprefix(layer).partition(".")
            prefix = f"{_TRANSFORMERS[layer]}{index}."
            if rest == "self_attn.in_proj.weight":
                q, k, v = tensor.chunk(3)
                state[prefix + "self_attn.q_proj.weight"] = _rotate_halves(q, heads)
                state[prefix + "self_attn.k_proj.weight"] = _rotate_halves(k, heads)
                state[prefix + "self_attn.v_proj.weight"] = v
                continue
            if rest in _LAYER:
                state[prefix + _LAYER[rest]] = tensor
                continue
        name = key
        for old, new in replacements:
            name = name.replace(old, new)
        if name in state:
            raise ConversionFailed(f"Kyutai's {key!r} lands on {name!r}, which is already taken")
        state[name] = tensor
    return state


def _rotate_halves(weight: torch.Tensor, heads: int) -> torch.Tensor:
    """q or k rows reordered per head from interleaved rotary pairs to rotated halves."""
    out_dim, in_dim = weight.shape
    head_dim = out_dim // heads
    pairs = weight.reshape(heads, head_dim // 2, 2, in_dim)
    return pairs.transpose(1, 2).reshape(out_dim, in_dim).contiguous()


def _embeddings(kyutai: dict, vocab_size: int, ids: dict[str, int]) -> torch.Tensor:
    import torch

    text = kyutai["flow_lm.conditioner.embed.weight"]
    n_text = text.shape[0] - 1  # the last row is Kyutai's padding entry
    if min(ids.values()) != n_text or vocab_size != n_text + len(ids):
        raise ConversionFailed(
            f"Kyutai's text table has {n_text} entries but its tokenizer has {min(ids.values())}: "
            "the checkpoint and tokenizer.model are from different languages or revisions"
        )
    if "flow_lm.bos_before_voice" not in kyutai:
        raise ConversionFailed(
            "this Kyutai checkpoint has no learnt vector before the voice (bos_before_voice); "
            "the transformers classes need one: use a checkpoint made with it"
        )
    table = torch.zeros(vocab_size, text.shape[1], dtype=text.dtype)
    table[:n_text] = text[:n_text]
    table[ids["audio_prompt_bos_token"]] = kyutai["flow_lm.bos_before_voice"].reshape(-1)
    return table


def _count(kyutai: dict, pattern: str) -> int:
    found = {int(m.group(1)) for key in kyutai if (m := re.match(pattern, key))}
    if not found:
        raise ConversionFailed(f"Kyutai's checkpoint has no tensors matching {pattern!r}")
    return max(found) + 1


def _load_exactly(module, state: dict, what: str, ignore) -> None:
    """Load `state` into `module`; ConversionFailed unless every tensor fits and none is missing."""
    try:
        missing, unexpected = module.load_state_dict(state, strict=False)
    except RuntimeError as err:  # a size mismatch
        raise ConversionFailed(
            f"Kyutai's {what} tensors do not fit the {what} class: {err}"
        ) from err
    missing = [k for k in missing if not any(re.search(p, k) for p in ignore)]
    if missing or unexpected:
        raise ConversionFailed(
            f"Kyutai's {what} does not map onto the transformers {what} class: missing "
            f"{missing[:5]}, unexpected {unexpected[:5]}"
        )
