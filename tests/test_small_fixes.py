"""The small things a user notices: link signatures, file modes, counts, version, schema,
recorded adjustments, quiet logs."""

from __future__ import annotations

import io
import json
import os
import stat

from gpu.registry import ENGINES
from handlers.prompt import Profile
from infra.cli.main import main
from infra.cli.progress import FrameBars
from infra.storage.local import LocalStorage
from tests.bad_inputs import png_bad_crc
from tests.helpers import png, prompt, wav


def test_presigned_links_use_signature_v4(s3_storage):
    s3_storage.put("a/clip.mp4", b"x")
    link = s3_storage.presigned_url("a/clip.mp4", 3600)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in link and "Signature=" not in link.split("X-Amz")[0]


def test_local_outputs_are_readable_like_inputs(tmp_path):
    old = os.umask(0o022)
    try:
        storage = LocalStorage(tmp_path)
        storage.put("a/clip.mp4", b"video")
        storage.put_if_absent("a/.dropreel/clip/v.lease", b"{}")
    finally:
        os.umask(old)
    for key in ("a/clip.mp4", "a/.dropreel/clip/v.lease"):
        assert stat.S_IMODE((tmp_path / key).stat().st_mode) == 0o644


def test_watch_once_counts_jobs_that_failed(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("a", "b"):
        folder = tmp_path / "inbox" / name
        folder.mkdir(parents=True)
        (folder / "x.png").write_bytes(png_bad_crc())
        (folder / "x.wav").write_bytes(wav(0.5))
    assert main(["watch", "--once", "--settle", "0", str(tmp_path / "inbox")]) == 0
    out = capsys.readouterr().out
    assert "claimed 2, took back 0, done 0, failed 2" in out


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as done:
        assert done.code == 0
    assert capsys.readouterr().out.startswith("dropreel ")


def test_schema_lists_the_registered_engines_and_profiles(capsys):
    main(["schema"])
    schema = json.loads(capsys.readouterr().out)
    [engine] = [o for o in schema["properties"]["engine"]["anyOf"] if o.get("type") == "string"]
    assert "ltx-video" in engine["enum"] and "pocket-tts" not in engine["enum"]
    assert set(engine["enum"]) == {n for n, s in ENGINES.items() if s.kinds != ("speech",)}
    profiles = {p for s in ENGINES.values() for p in s.profiles}
    assert set(Profile.__args__) == profiles
    [profile] = [o for o in schema["properties"]["profile"]["anyOf"] if "enum" in o]
    assert set(profile["enum"]) == profiles


def test_preview_records_the_size_and_fps_it_ignored(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "inbox" / "ana"
    folder.mkdir(parents=True)
    (folder / "ana.png").write_bytes(png())
    (folder / "ana.wav").write_bytes(wav(0.5))
    (folder / "prompt.json").write_bytes(
        json.dumps({"width": 512, "height": 512, "fps": 12}).encode()
    )
    (tmp_path / "inbox" / "card").mkdir()
    (tmp_path / "inbox" / "card" / "prompt.json").write_bytes(
        prompt("dawn", width=640, duration_seconds=0.5)
    )
    assert main(["watch", "--once", "--settle", "0", str(tmp_path / "inbox")]) == 0
    talking = json.loads((folder / ".dropreel" / "ana" / "status.json").read_text())
    assert talking["state"] == "done"
    assert talking["adjustments"] == [
        "size 512x512 ignored: the talking-head preview keeps the image's shape, 64x64",
        "fps 12 ignored: the talking-head preview runs at 25 fps",
    ]
    card = json.loads(
        (tmp_path / "inbox" / "card" / ".dropreel" / "prompt" / "status.json").read_text()
    )
    assert card["adjustments"] == [
        "size 640x? ignored: give both width and height; the preview made 512x288"
    ]


def test_progress_bars_write_nothing_to_a_log_file(monkeypatch):
    log = io.StringIO()  # not a terminal
    monkeypatch.setattr("sys.stderr", log)
    bars = FrameBars()

    class Job:
        name = "team/ana"

    for done in range(1, 11):
        bars(Job(), done, 10)
    assert log.getvalue() == ""
