"""Pocket TTS in Kyutai's other languages: pulled in Kyutai's format, converted once, spoken.

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
    """Every pocket-tts repo at the revision dropreel pins (English and voices: what it pulls)."""
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


def pull_french(hub: Path, weights: Path, monkeypatch, capsys) -> str:
    import huggingface_hub

    from infra.cli.main import main

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_hub(hub))
    code = main(["weights", "pull", "pocket-tts", "--language", "fr", "--dir", str(weights)])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_pulling_french_fetches_the_pinned_kyutai_files_and_converts_them_once(
    hub, tmp_path, monkeypatch, capsys
):
    from transformers import (
        AutoTokenizer,
        PocketTTSAudioTokenizerModel,
        PocketTTSForConditionalGeneration,
    )

    weights = tmp_path / "weights"
    report = pull_french(hub, weights, monkeypatch, capsys)
    assert "kyutai/pocket-tts" in report and "39592ff23c9ef80098bb74895d104c26275fe2c9" in report
    assert not (weights / "pocket-tts" / "de").exists()  # only the language asked for

    converted = weights / "pocket-tts" / "fr"
    model, info = PocketTTSForConditionalGeneration.from_pretrained(
        converted / "model", output_loading_info=True
    )
    _, codec_info = PocketTTSAudioTokenizerModel.from_pretrained(
        converted / "codec", output_loading_info=True
    )
    for loading in (info, codec_info):
        assert not loading["missing_keys"] and not loading["unexpected_keys"]
        assert not loading["mismatched_keys"] and not loading["error_msgs"]
    assert model.config.num_hidden_layers == 2  # from Kyutai's checkpoint (English: 1)

    # the text is cut into the very pieces Kyutai's own tokenizer makes
    import sentencepiece

    kyutai = sentencepiece.SentencePieceProcessor(
        model_file=str(next(weights.rglob("tokenizer.model")))
    )
    tokenizer = AutoTokenizer.from_pretrained(converted / "model")
    text = "Le chat est sur la table, merci !"
    assert tokenizer.encode(text, add_special_tokens=False) == kyutai.encode(text)

    # a second pull finds the conversion done and leaves it as it is
    stamp = (converted / "model" / "model.safetensors").stat().st_mtime_ns
    pull_french(hub, weights, monkeypatch, capsys)
    assert (converted / "model" / "model.safetensors").stat().st_mtime_ns == stamp


def test_a_tensor_the_conversion_does_not_know_stops_it(hub, tmp_path):
    from gpu.speech.pocket_convert import ConversionFailed, convert_language
    from gpu.speech.spec import KYUTAI_LANGUAGES
    from gpu.weights import Places
    from tests import speech_tiny

    weights = tmp_path / "weights"
    shutil.copytree(hub / "eustlb" / "pocket-tts" / "main", weights / "pocket-tts" / "model")
    codec = hub / "eustlb" / "pocket-tts-audio-tokenizer" / "main"
    shutil.copytree(codec, weights / "pocket-tts" / "codec")
    places = Places(weights_dir=str(weights))
    french = KYUTAI_LANGUAGES[0]
    speech_tiny.build_kyutai(
        places,
        french,
        speech_tiny.sentencepiece_model(),
        **{"flow_lm.new_thing.weight": torch.zeros(2)},
    )
    with pytest.raises(ConversionFailed, match=r"'flow_lm\.new_thing\.weight'"):
        convert_language(french.model, places)
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


def test_a_language_not_pulled_names_the_command_that_fetches_it(hub, tmp_path, monkeypatch):
    from config.settings import get_settings
    from gpu.errors import WeightsMissing
    from gpu.speech.engine import SpeechRequest
    from gpu.speech.pocket import PocketSpeechEngine

    weights = tmp_path / "weights"
    for repo in ("pocket-tts", "pocket-tts-audio-tokenizer"):
        folder = "model" if repo == "pocket-tts" else "codec"
        shutil.copytree(hub / "eustlb" / repo / "main", weights / "pocket-tts" / folder)
    shutil.copytree(
        next((hub / "kyutai" / "tts-voices").iterdir()), weights / "pocket-tts" / "voices"
    )
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
