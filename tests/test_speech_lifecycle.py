"""Script -> speech -> talking head through the real lifecycle, on moto and a local folder.

The preview engines run everywhere; Pocket TTS and InfiniteTalk run their real code at tiny size
with random weights, loaded from the published layouts. What is checked is what a user sees:
the speech file next to the video, an MP4 as long as the speech, status.json with both stages.
"""

from __future__ import annotations

import io
import json
import wave

import numpy as np
import pytest

from tests.helpers import Notifications, decode_mp4, png, prompt, run_tick, runtime, status, wav


def wav_seconds(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


@pytest.fixture
def notes(tmp_path) -> Notifications:
    return Notifications(tmp_path / "notes.jsonl")


def test_script_becomes_speech_then_a_talking_head(storage, make_settings, notes, tmp_path):
    storage.put("talk/alice.png", png(96, 72))
    storage.put("talk/bob.png", png(64, 64, seed=1))
    storage.put("talk/script.txt", b"Hello, I am a portrait.\n\nAnd this is my second point!")
    storage.put("talk/bob.voice.wav", wav(1.0))
    run_tick(runtime(storage, make_settings(storage), notes))

    for stem in ("alice", "bob"):
        speech = storage.get(f"talk/{stem}.speech.wav")
        seconds = wav_seconds(speech)
        info = decode_mp4(storage.get(f"talk/{stem}.mp4"), tmp_path)
        assert abs(info.duration - seconds) <= 1 / info.fps
        assert abs(info.audio_seconds - seconds) <= 1 / info.fps + 0.03

        st = status(storage, f"talk/.dropreel/{stem}/status.json")
        assert st["state"] == "done" and st["kind"] == "talking_head"
        assert st["speech"]["engine"] == "speech-preview"
        assert st["speech"]["key"] == f"talk/{stem}.speech.wav"
        assert st["speech"]["duration_seconds"] == pytest.approx(seconds, abs=1e-3)
        assert st["speech"]["settings"]["chunks"] == 2
        stages = list(st["timings"])
        assert stages.index("speech") < stages.index("render")
        assert "talk/script.txt" in st["inputs"]
    assert status(storage, "talk/.dropreel/bob/status.json")["speech"]["settings"]["voice"] == (
        "sample"
    )
    assert sorted(n["job"] for n in notes.read()) == ["talk/alice", "talk/bob"]


def test_slack_shows_the_speech_stage_then_the_video(storage, make_settings, notes):
    from handlers.notify import JobEvent
    from handlers.status import JobStatus
    from infra.notify.fake_slack import FakeSlack
    from infra.notify.slack import build_message

    storage.put("n/alice.png", png())
    storage.put("n/alice.script.txt", b"Hi there.")
    run_tick(runtime(storage, make_settings(storage), notes))
    st = JobStatus.model_validate(status(storage, "n/.dropreel/alice/status.json"))
    _, blocks = build_message(JobEvent(status=st, folder="n/"), 3600)
    text = FakeSlack().render({"blocks": blocks})
    assert "speech-preview (speech), then preview" in text
    assert text.index("speech ") < text.index("render ")


def test_speech_field_of_prompt_json_with_a_preset_voice(storage, make_settings, notes, tmp_path):
    storage.put("p/face.png", png())
    storage.put("p/face.prompt.json", prompt(None, speech="Good morning.", voice="high"))
    run_tick(runtime(storage, make_settings(storage), notes))
    st = status(storage, "p/.dropreel/face/status.json")
    assert st["state"] == "done" and st["kind"] == "talking_head", st.get("error")
    assert st["speech"]["settings"]["voice"] == "high"
    assert wav_seconds(storage.get("p/face.speech.wav")) > 0.3


def test_a_second_tick_never_takes_the_speech_for_an_input(storage, make_settings, notes):
    storage.put("s/alice.png", png())
    storage.put("s/alice.script.txt", b"One more time.")
    rt = runtime(storage, make_settings(storage), notes)
    run_tick(rt)
    again = run_tick(rt)
    assert again.claimed == [] and len(notes.read()) == 1


def test_speech_longer_than_the_limit_is_refused(storage, make_settings, notes):
    storage.put("l/alice.png", png())
    storage.put("l/alice.script.txt", ("Words to say. " * 40).encode())
    run_tick(runtime(storage, make_settings(storage, max_audio_seconds=3.0), notes))
    st = status(storage, "l/.dropreel/alice/status.json")
    assert st["state"] == "failed"
    assert "s of speech; a talking head may be at most 3 s long" in st["error"]


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def pocket_weights(tmp_path_factory):
    """The tiny Pocket TTS where the engine looks: DROPREEL_WEIGHTS_DIR."""
    from config.settings import get_settings
    from tests import speech_tiny

    with pytest.MonkeyPatch.context() as env:
        root = speech_tiny.build(tmp_path_factory.mktemp("speech-weights"))
        env.setenv("DROPREEL_WEIGHTS_DIR", str(root))
        get_settings.cache_clear()
        yield root
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def talking_head(tmp_path_factory):
    from gpu.infinitetalk.engine import InfiniteTalkEngine
    from tests import infinitetalk_tiny
    from tests.test_infinitetalk_engine import TINY_PROFILES

    root = infinitetalk_tiny.build(tmp_path_factory.mktemp("talking-head"))
    engine = InfiniteTalkEngine(weights_dir=root, profiles=TINY_PROFILES, device="cpu")
    engine.load()
    return engine


def test_pocket_tts_then_infinitetalk_at_tiny_size(
    s3_storage, make_settings, notes, tmp_path, pocket_weights, talking_head
):
    from gpu.registry import load_engine

    storage = s3_storage
    storage.put("tiny/face.png", png(96, 64))
    storage.put("tiny/face.script.txt", b"Hello there. This is a tiny voice.")
    storage.put("tiny/face.voice.wav", wav(1.5, rate=24_000))
    settings = make_settings(
        storage,
        engine_talking_head="infinitetalk",
        engine_speech="pocket-tts",
    )
    rt = runtime(storage, settings, notes)
    rt.engine_loader = lambda name: talking_head if name == "infinitetalk" else load_engine(name)
    run_tick(rt)

    st = status(storage, "tiny/.dropreel/face/status.json")
    assert st["state"] == "done", st.get("error")
    assert st["engine"] == "infinitetalk" and st["speech"]["engine"] == "pocket-tts"
    assert st["speech"]["settings"]["voice"] == "sample"
    seconds = wav_seconds(storage.get("tiny/face.speech.wav"))
    info = decode_mp4(storage.get("tiny/face.mp4"), tmp_path)
    # InfiniteTalk makes 4n+1 frames, so its video may end up to four frames before the speech
    assert 0 <= seconds - info.duration <= 5 / 25
    assert json.loads(storage.get("tiny/.dropreel/face/status.json"))["timings"]["speech"] > 0


def _longest_silence(samples: np.ndarray) -> int:
    silent = np.concatenate([[0], (samples == 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(silent))
    return int((edges[1::2] - edges[::2]).max()) if edges.size else 0


@pytest.mark.parametrize("engine_name", ["pocket-tts", "speech-preview"])
def test_a_long_script_joins_without_clicks_gaps_or_level_jumps(pocket_weights, engine_name):
    from gpu.registry import load_engine
    from gpu.speech.engine import SpeechRequest
    from gpu.speech.script import PARAGRAPH_PAUSE

    engine = load_engine(engine_name)
    text = " ".join(f"Sentence number {i} is here, and it keeps going a while." for i in range(12))
    plan = engine.check_inputs(SpeechRequest(text=text + "\n\nThe end.", seed=3))
    assert len(plan.chunks) >= 3
    pieces = list(engine.render(plan))
    speech = np.concatenate(pieces)
    rate = plan.sample_rate

    # every piece starts and ends its sound at silence: no click where two pieces meet
    for piece in pieces:
        sound = np.flatnonzero(piece)
        edges = np.abs(piece[[sound[0], sound[-1]]])
        assert edges.max() <= 0.02 * np.abs(piece).max()
    # no silence longer than the longest pause the text asks for (a blank line)
    assert _longest_silence(speech) <= int(PARAGRAPH_PAUSE * rate) + int(0.02 * rate)
    # one level: every chunk's speech within 3 dB of the others
    levels = [20 * np.log10(np.sqrt(np.mean(p[np.abs(p) > 0] ** 2))) for p in pieces]
    assert max(levels) - min(levels) <= 3.0


def test_pocket_pull_patterns_cover_exactly_the_published_layout(pocket_weights):
    from fnmatch import fnmatch

    from gpu.registry import get_spec
    from gpu.weights import Places

    places = Places(weights_dir=str(pocket_weights))
    for source in get_spec("pocket-tts").weights:
        root = places.folder(source)
        files = [str(f.relative_to(root)) for f in root.rglob("*") if f.is_file()]
        assert files and all(any(fnmatch(f, p) for p in source.patterns) for f in files), files
        assert all((root / marker).exists() for marker in source.markers())
