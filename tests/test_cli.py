"""The `dropreel` command as a user runs it, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import decode_mp4, png, prompt, wav

ROOT = Path(__file__).resolve().parents[1]


def dropreel(*args: str, timeout: float = 240, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "infra.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_watch_once_and_status_on_a_local_folder(tmp_path):
    inbox = tmp_path / "inbox"
    (inbox / "team a").mkdir(parents=True)
    (inbox / "team a" / "ana.png").write_bytes(png())
    (inbox / "team a" / "ana.wav").write_bytes(wav(0.5))
    (inbox / "ideas").mkdir()
    (inbox / "ideas" / "prompt.json").write_bytes(prompt("dawn", duration_seconds=0.5))
    (inbox / "lonely.png").write_bytes(png())
    url = inbox.as_uri()

    result = dropreel("watch", url, "--once", "--settle", "0")
    assert result.returncode == 0, result.stderr
    assert "claimed 2" in result.stdout
    assert "done: team a/ana [talking_head, preview (preview)]" in result.stdout
    assert decode_mp4((inbox / "team a" / "ana.mp4").read_bytes(), tmp_path).frames == 13

    result = dropreel("status", url, "--json")
    states = {j["job"]: j["state"] for j in json.loads(result.stdout)}
    assert states == {"team a/ana": "done", "ideas/prompt": "done", "lonely": "incomplete"}
    table = dropreel("status", url).stdout
    assert "team a/ana" in table and "incomplete" in table


def test_bad_watch_root_is_a_clear_error():
    result = dropreel("watch", "ftp://nowhere/x", "--once")
    assert result.returncode == 2
    assert "must start with file:// or s3://" in result.stderr
    assert "Traceback" not in result.stderr


def test_schema_prints_the_prompt_json_schema():
    schema = json.loads(dropreel("schema").stdout)
    assert schema["additionalProperties"] is False
    assert {"prompt", "duration_seconds", "seed", "engine"} <= set(schema["properties"])


def test_demo_runs_end_to_end(tmp_path):
    result = dropreel("demo", "--out", str(tmp_path / "out"), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every video rendered" in result.stdout
    videos = sorted((tmp_path / "out").glob("*.mp4"))
    assert len(videos) == 3  # portrait + voice, prompt card, portrait + script
    assert len(list((tmp_path / "out").glob("*.speech.wav"))) == 1
    infos = [decode_mp4(v.read_bytes(), tmp_path) for v in videos]
    assert any(i.audio_seconds for i in infos)


def test_watcher_imports_without_torch():
    code = (
        "import sys, infra.cli.main, infra.wiring, infra.local_dispatch, triggers.poller, handlers.lifecycle, "
        "handlers.reconcile, gpu.registry, gpu.builtin, gpu.encode\n"
        "bad = [m for m in ('torch', 'diffusers', 'transformers', 'modal') if m in sys.modules]\n"
        "print(bad)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.stdout.strip() == "[]", out.stderr


def test_readme_tables_and_schema_file_match_the_code():
    result = subprocess.run(
        [sys.executable, "-m", "infra.cli.docs_tables", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stdout
