"""Folder settings (`dropreel.json`): inherited by subfolders, nearest file wins, the job's own
prompt.json wins over all; refused like prompt.json, naming the file; shown by status.json and
`dropreel status`; never an input, and changing one renders nothing again. Through the real
lifecycle on S3 (moto) and a local folder."""

from __future__ import annotations

import json

import pytest

from infra.cli.main import main
from tests.helpers import Notifications, decode_mp4, png, prompt, run_tick, runtime, started, wav
from tests.helpers import status as read_status


@pytest.fixture
def status_cli(capsys, monkeypatch, moto_endpoint):
    """`dropreel status URL [--json]` as a user runs it: what it prints."""
    monkeypatch.setenv("DROPREEL_ENDPOINT_URL", moto_endpoint)

    def run(storage, *flags: str) -> str:
        capsys.readouterr()
        assert main(["status", storage.url, *flags]) == 0
        return capsys.readouterr().out

    return run


def _settings_file(**fields) -> bytes:
    return json.dumps(fields).encode()


def test_nearest_settings_win_and_prompt_json_wins_over_them(
    storage, make_settings, tmp_path, status_cli
):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("dropreel.json", _settings_file(engine="preview", fps=8, height=64))
    storage.put("team/dropreel.json", _settings_file(fps=10))
    storage.put("team/clip/prompt.json", prompt("dawn", duration_seconds=1.0, width=128))
    run_tick(rt)

    video = decode_mp4(storage.get("team/clip/prompt.mp4"), tmp_path)
    assert (video.fps, video.width, video.height, video.frames) == (10, 128, 64, 10)
    st = read_status(storage, "team/clip/.dropreel/prompt/status.json")
    assert st["folder_settings"] == {
        "engine": {"value": "preview", "from": "dropreel.json"},
        "fps": {"value": 10, "from": "team/dropreel.json"},
        "height": {"value": 64, "from": "dropreel.json"},
    }
    table = status_cli(storage)
    assert 'folder settings: engine="preview" (dropreel.json), fps=10 (team/dropreel.json)' in (
        table
    )
    [job] = json.loads(status_cli(storage, "--json"))
    assert job["folder_settings"]["fps"] == {"value": 10, "from": "team/dropreel.json"}
    assert [n["state"] for n in notes.read()] == ["done"]


def test_a_bad_settings_file_fails_the_jobs_under_it_naming_the_file(
    storage, make_settings, tmp_path, status_cli
):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("team/dropreel.json", _settings_file(fps=500))
    storage.put("team/a/al.png", png())
    storage.put("team/a/al.wav", wav())
    storage.put("other/bo.png", png())
    storage.put("other/bo.wav", wav())
    run_tick(rt)

    failed = read_status(storage, "team/a/.dropreel/al/status.json")
    assert failed["state"] == "failed" and failed["fix_by"] == "user"
    assert failed["error"].startswith("team/dropreel.json: fps = 500 is not allowed")
    assert read_status(storage, "other/.dropreel/bo/status.json")["state"] == "done"
    assert "folder settings refused: team/dropreel.json: fps = 500" in status_cli(storage)
    states = {n["job"]: n["state"] for n in notes.read()}
    assert states == {"team/a/al": "failed", "other/bo": "done"}


def test_an_engine_named_in_folder_settings_is_checked_like_prompt_json(
    storage, make_settings, tmp_path
):
    rt = runtime(storage, make_settings(storage), Notifications(tmp_path / "n.jsonl"))
    storage.put("dropreel.json", _settings_file(engine="no-such-engine"))
    storage.put("al.png", png())
    storage.put("al.wav", wav())
    run_tick(rt)
    error = read_status(storage, ".dropreel/al/status.json")["error"]
    assert error.startswith("dropreel.json: ") and "fix the engine field" in error


def test_settings_files_are_not_inputs_and_changing_one_renders_nothing_again(
    storage, make_settings, tmp_path
):
    notes = Notifications(tmp_path / "notes.jsonl")
    rt = runtime(storage, make_settings(storage), notes)
    storage.put("s/dropreel.json", _settings_file(seed=7))
    storage.put("s/al.png", png())
    storage.put("s/al.wav", wav())
    run_tick(rt)
    [note] = notes.read()
    assert note["inputs"] == [storage.describe(k) for k in ("s/al.png", "s/al.wav")]

    storage.put("s/dropreel.json", _settings_file(seed=8))
    run_tick(rt)
    assert started(rt) == ["s/al"]  # applies to new versions only
    storage.put("s/al.retry", b"")  # ...or to a finished job the user asks to render again
    run_tick(rt)
    assert started(rt) == ["s/al", "s/al"]
    assert read_status(storage, "s/.dropreel/al/status.json")["settings"]["seed"] == 8


def test_script_fields_set_for_a_folder_do_not_fail_its_plain_jobs(
    storage, make_settings, tmp_path
):
    rt = runtime(storage, make_settings(storage), Notifications(tmp_path / "n.jsonl"))
    storage.put("dropreel.json", _settings_file(language="fr"))
    storage.put("al.png", png())
    storage.put("al.wav", wav())
    run_tick(rt)
    assert read_status(storage, ".dropreel/al/status.json")["state"] == "done"
