"""Pocket TTS in Kyutai's six languages: pulled in Kyutai's format at pinned commits, converted once.

The Hub is a local folder here (one subfolder per repo and commit, so a pull that asks for any
other revision finds nothing); everything after the download is the real code: the pull's
conversion, the transformers loaders, the engine and the lifecycle on moto.
"""

from __future__ import annotations

import io
import shutil
import wave
from fnmatch import fnmatch
from pathlib import Path

import pytest

from tests.helpers import Notifications, decode_mp4, png, prompt, run_tick, runtime, status

torch = pytest.importorskip("torch")
pytest.importorskip("sentencepiece")


def fake_hub(root: Path):
    """`snapshot_download` served from `root/<repo id>/<revision>/`, honouring allow_patterns."""

    def snapshot_download(repo_id, revision, allow_patterns, local_dir, **_):
        source = root / repo_id / revision
        if not source.is_dir():
            raise FileNotFoundError(f"{repo_id} has no revision {revision}")
        for path in source.rglob("*"):
            name = str(path.relative_to(source))
            if path.is_file() and any(fnmatch(name, p) for p in allow_patterns):
                (Path(local_dir) / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, Path(local_dir) / name)
        return local_dir

    return snapshot_download


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Path:
    """Every pocket-tts repo at the revision dropreel pins, holding what the pull downloads."""
    from gpu.registry import get_spec
    from gpu.weights import Places
    from tests import speech_tiny

    built = speech_tiny.build(tmp_path_factory.mktemp("built"))
    places = Places(weights_dir=str(built))
    root = tmp_path_factory.mktemp("hub")
    for source in get_spec("pocket-tts").weights:
        shutil.copytree(
            places.folder(source), root / source.repo_id / source.ref, dirs_exist_ok=True
        )
    return root


def pull(hub: Path, weights: Path, monkeypatch, capsys, *languages: str, download=None) -> str:
    """`dropreel weights pull pocket-tts [--language L]...` from the local hub, at tiny size."""
    import huggingface_hub

    from gpu.speech import pocket_convert
    from infra.cli.main import main
    from tests import speech_tiny

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download or fake_hub(hub))
    monkeypatch.setattr(pocket_convert, "CONFIGS", speech_tiny.configs())
    asked = [arg for code in languages for arg in ("--language", code)]
    code = main(["weights", "pull", "pocket-tts", *asked, "--dir", str(weights)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def pull_french(hub: Path, weights: Path, monkeypatch, capsys) -> str:
    return pull(hub, weights, monkeypatch, capsys, "fr")


def language_named(code: str):
    from gpu.speech.spec import KYUTAI_LANGUAGES

    return next(spoken for spoken in KYUTAI_LANGUAGES if spoken.code == code)


def loads_exactly(folder: Path):
    """The converted model, after checking that it and its codec load with no tensor left over."""
    from transformers import PocketTTSAudioTokenizerModel, PocketTTSForConditionalGeneration

    model, info = PocketTTSForConditionalGeneration.from_pretrained(
        folder / "model", output_loading_info=True
    )
    _, codec_info = PocketTTSAudioTokenizerModel.from_pretrained(
        folder / "codec", output_loading_info=True
    )
    for loading in (info, codec_info):
        assert not loading["missing_keys"] and not loading["unexpected_keys"]
        assert not loading["mismatched_keys"] and not loading["error_msgs"]
    return model


def test_pulling_french_fetches_the_pinned_kyutai_files_and_converts_them_once(
    hub, tmp_path, monkeypatch, capsys
):
    from transformers import AutoTokenizer

    weights = tmp_path / "weights"
    report = pull_french(hub, weights, monkeypatch, capsys)
    assert "kyutai/pocket-tts" in report and "39592ff23c9ef80098bb74895d104c26275fe2c9" in report
    assert not (weights / "pocket-tts" / "de").exists()  # only the language asked for

    converted = weights / "pocket-tts" / "fr"
    model = loads_exactly(converted)
    assert model.config.num_hidden_layers == 2  # from Kyutai's checkpoint (English: 1)

    # the text is cut into the very pieces Kyutai's own tokenizer makes
    import sentencepiece

    kyutai = sentencepiece.SentencePieceProcessor(
        model_file=str(next((weights / "pocket-tts" / "fr").rglob("tokenizer.model")))
    )
    tokenizer = AutoTokenizer.from_pretrained(converted / "model")
    text = "Le chat est sur la table, merci !"
    assert tokenizer.encode(text, add_special_tokens=False) == kyutai.encode(text)

    # a second pull finds the conversion done and leaves it as it is
    stamp = (converted / "model" / "model.safetensors").stat().st_mtime_ns
    pull_french(hub, weights, monkeypatch, capsys)
    assert (converted / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_tensor_the_conversion_does_not_know_stops_it(tmp_path):
    from gpu.speech.pocket_convert import ConversionFailed, convert_language
    from gpu.weights import Places
    from tests import speech_tiny

    weights = tmp_path / "weights"
    places = Places(weights_dir=str(weights))
    french = language_named("fr")
    speech_tiny.build_kyutai(
        places,
        french,
        speech_tiny.sentencepiece_model(),
        **{"flow_lm.new_thing.weight": torch.zeros(2)},
    )
    with pytest.raises(ConversionFailed, match=r"'flow_lm\.new_thing\.weight'"):
        convert_language(french.model, places, speech_tiny.configs())
    assert not (weights / "pocket-tts" / "fr" / "model").exists()


@pytest.fixture
def french_engine(hub, tmp_path, monkeypatch, capsys):
    from config.settings import get_settings
    from gpu.speech.pocket import PocketSpeechEngine

    weights = tmp_path / "weights"
    pull_french(hub, weights, monkeypatch, capsys)
    monkeypatch.setenv("DROPREEL_WEIGHTS_DIR", str(weights))
    get_settings.cache_clear()
    engine = PocketSpeechEngine()
    engine.load()
    yield engine
    get_settings.cache_clear()


def test_a_french_script_is_spoken_then_rendered_through_the_lifecycle(
    s3_storage, make_settings, tmp_path, french_engine
):
    storage = s3_storage
    storage.put("fr/face.png", png(64, 64))
    storage.put("fr/face.script.txt", "Bonjour à tous. Voici une petite voix.".encode())
    storage.put("fr/face.prompt.json", prompt(None, language="fr", voice="estelle"))
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage, engine_speech="pocket-tts"), notes)
    load = rt.engine_loader
    rt.engine_loader = lambda name: french_engine if name == "pocket-tts" else load(name)
    run_tick(rt)

    st = status(storage, "fr/.dropreel/face/status.json")
    assert st["state"] == "done", st.get("error")
    assert st["speech"]["settings"]["language"] == "fr"
    assert st["speech"]["settings"]["voice"] == "estelle"
    with wave.open(io.BytesIO(storage.get("fr/face.speech.wav"))) as speech:
        seconds = speech.getnframes() / speech.getframerate()
    assert seconds > 0
    info = decode_mp4(storage.get("fr/face.mp4"), tmp_path)
    assert abs(info.duration - seconds) <= 1 / info.fps
    assert set(french_engine.languages) == {"en", "fr"}


def test_french_reads_a_semicolon_as_a_comma(french_engine):
    from gpu.speech.engine import SpeechRequest

    said = []
    french_engine._say = lambda text, voice, spoken: said.append(text) or torch.zeros(10).numpy()
    for language in ("fr", "en"):
        plan = french_engine.check_inputs(SpeechRequest(text="Oui; non.", language=language))
        list(french_engine.render(plan))
    assert said == ["Oui, non.", "Oui; non."]


def test_a_language_not_pulled_names_the_command_that_fetches_it(
    hub, tmp_path, monkeypatch, capsys
):
    from config.settings import get_settings
    from gpu.errors import WeightsMissing
    from gpu.speech.engine import SpeechRequest
    from gpu.speech.pocket import PocketSpeechEngine

    weights = tmp_path / "weights"
    pull_french(hub, weights, monkeypatch, capsys)  # English, French and the voices
    monkeypatch.setenv("DROPREEL_WEIGHTS_DIR", str(weights))
    get_settings.cache_clear()
    engine = PocketSpeechEngine()
    engine.load()
    get_settings.cache_clear()
    plan = engine.check_inputs(SpeechRequest(text="Hallo zusammen.", language="de"))
    with pytest.raises(WeightsMissing, match="dropreel weights pull pocket-tts --language de"):
        list(engine.render(plan))


def test_pocket_tts_speaks_kyutais_six_languages_and_refuses_the_rest():
    from gpu.errors import InputError
    from gpu.speech.engine import SpeechRequest
    from gpu.speech.pocket import PocketSpeechEngine

    engine = PocketSpeechEngine()  # checking a request loads nothing
    for language in ("en", "fr", "de", "es", "it", "pt"):
        assert (
            engine.check_inputs(SpeechRequest(text="Hi.", language=language)).language == language
        )
    with pytest.raises(InputError) as refused:
        engine.check_inputs(SpeechRequest(text="Hallo.", language="nl"))
    assert str(refused.value) == (
        "pocket-tts does not speak language 'nl'; it speaks en, fr, de, es, it, pt: fix the "
        "language field"
    )


def test_english_comes_from_kyutais_pinned_checkpoint_converted_like_the_others(
    hub, tmp_path, monkeypatch, capsys
):
    import json

    import sentencepiece
    from transformers import AutoTokenizer

    weights = tmp_path / "weights"
    report = pull(hub, weights, monkeypatch, capsys, "de")
    assert "eustlb" not in report

    english = weights / "pocket-tts" / "en"
    assert json.loads((english / "model" / "converted-from.json").read_text()) == {
        "layout": 2,
        "language": "en",
        "model": "kyutai/pocket-tts@39592ff23c9ef80098bb74895d104c26275fe2c9/"
        "languages/english/model.safetensors",
        "tokenizer": "kyutai/pocket-tts-without-voice-cloning@"
        "d29db7978e464fb90cb3359ee0c69a273b9142cc/languages/english/tokenizer.model",
    }
    assert loads_exactly(english).config.num_hidden_layers == 1  # German: 2
    assert loads_exactly(weights / "pocket-tts" / "de").config.num_hidden_layers == 2

    kyutai = sentencepiece.SentencePieceProcessor(
        model_file=str(english / "kyutai-tokenizer" / "languages" / "english" / "tokenizer.model")
    )
    tokenizer = AutoTokenizer.from_pretrained(english / "model")
    text = "Hello there, this is a tiny voice!"
    assert tokenizer.encode(text, add_special_tokens=False) == kyutai.encode(text)


def test_every_speech_weight_is_pulled_at_a_pinned_commit(hub, tmp_path, monkeypatch, capsys):
    import re

    from gpu.speech.spec import SPEECH_ENGINES

    for spec in SPEECH_ENGINES:
        for source in spec.weights:
            assert re.fullmatch(r"[0-9a-f]{40}", source.revision or ""), source.label

    asked = []
    serve = fake_hub(hub)

    def snapshot_download(repo_id, revision, **kwargs):
        asked.append((repo_id, revision))
        return serve(repo_id, revision, **kwargs)

    pull(hub, tmp_path / "weights", monkeypatch, capsys, download=snapshot_download)  # all
    assert {repo for repo, _ in asked} == {
        "kyutai/pocket-tts",
        "kyutai/pocket-tts-without-voice-cloning",
        "kyutai/tts-voices",
    }
    assert all(re.fullmatch(r"[0-9a-f]{40}", str(revision)) for _, revision in asked), asked
