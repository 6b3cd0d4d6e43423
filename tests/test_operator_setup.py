"""Operator mistakes are caught when a command starts, in one line each, never blamed on a user.

Each test runs the `dropreel` command in-process as an operator would and checks what they see:
the exit code, the lines on stderr, the folders on disk, the calls the fake Slack server got,
and for a render-time setup failure, status.json and the Slack message.
"""

from __future__ import annotations

import json
import sys

import pytest

from infra.cli.main import main
from infra.notify.fake_slack import FakeSlack
from tests.helpers import png, prompt, wav


@pytest.fixture
def operator(tmp_path, monkeypatch):
    """A clean environment in an empty working folder (no .env, no DROPREEL_* set)."""
    for name in list(__import__("os").environ):
        if name.startswith("DROPREEL_") or name == "SLACK_BOT_TOKEN":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def refused(err: str) -> list[str]:
    lines = err.strip().splitlines()
    assert lines and all(line.startswith("dropreel: ") for line in lines), err
    assert "Traceback" not in err and "validation error" not in err
    return [line.removeprefix("dropreel: ") for line in lines]


def test_unknown_setting_name_is_refused_with_did_you_mean(operator, monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_WATCHROOT", str(operator / "media"))
    code, _, err = run(capsys, "watch", "--once")
    assert code == 2
    assert refused(err) == [
        "DROPREEL_WATCHROOT is not a dropreel setting: did you mean DROPREEL_WATCH_ROOT?"
    ]
    assert not (operator / "inbox").exists()  # it did not fall back to watching ./inbox


def test_unknown_name_in_dotenv_is_refused_too(operator, capsys):
    (operator / ".env").write_text("DROPREEL_SETLE_SECONDS=3\n")
    code, _, err = run(capsys, "watch", "--once")
    assert code == 2
    assert "did you mean DROPREEL_SETTLE_SECONDS?" in refused(err)[0]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        (
            "DROPREEL_ENGINE_TEXT_TO_VIDEO",
            "ltx-vidoe",
            "DROPREEL_ENGINE_TEXT_TO_VIDEO='ltx-vidoe' is not an engine: did you mean 'ltx-video'?",
        ),
        (
            "DROPREEL_TALKING_HEAD_PROFILE",
            "balnced",
            "DROPREEL_TALKING_HEAD_PROFILE='balnced' is not a profile: did you mean 'balanced'?",
        ),
        (
            "DROPREEL_ENGINE_SPEECH",
            "preview",
            "DROPREEL_ENGINE_SPEECH='preview' does not make speech: use one of",
        ),
    ],
)
@pytest.mark.parametrize("command", [["watch", "--once"], ["serve"], ["deploy", "--dry-run"]])
def test_unknown_engine_or_profile_stops_every_starting_command(
    operator, monkeypatch, capsys, name, value, expected, command
):
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", str(operator / "inbox"))
    code, out, err = run(capsys, *command)
    assert code == 2
    [line] = refused(err)
    assert line.startswith(expected)
    assert "webhook for" not in out  # serve never started listening


def block(monkeypatch, *packages: str) -> None:
    """Make `packages` impossible to import, as on a machine without them."""
    for package in packages:
        for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            monkeypatch.delitem(sys.modules, loaded)
        monkeypatch.setitem(sys.modules, package, None)


def test_engine_without_its_packages_is_an_operator_error_at_start(operator, monkeypatch, capsys):
    block(monkeypatch, "torch")
    monkeypatch.setenv("DROPREEL_ENGINE_TEXT_TO_VIDEO", "ltx-video")
    code, _, err = run(capsys, "watch", "--once", str(operator / "inbox"))
    assert code == 2
    assert refused(err) == [
        "DROPREEL_ENGINE_TEXT_TO_VIDEO='ltx-video' needs the Python package 'torch', which is "
        "not installed: pip install 'dropreel[engines]', or choose another engine"
    ]


def test_a_job_naming_an_engine_without_packages_blames_the_setup_not_the_file(
    operator, monkeypatch, capsys
):
    """prompt.json picks ltx-video on a preview-only install: one failure, no retries, and
    status.json and Slack say the operator must fix the setup."""
    block(monkeypatch, "torch")
    monkeypatch.delitem(sys.modules, "gpu.ltx_video", raising=False)
    inbox = operator / "inbox" / "ideas"
    inbox.mkdir(parents=True)
    (inbox / "prompt.json").write_bytes(prompt("dawn", engine="ltx-video"))
    with FakeSlack() as fake:
        slack_env(monkeypatch, fake)
        code, out, _ = run(capsys, "watch", "--once", "--settle", "0", str(operator / "inbox"))
        assert code == 0
        assert "failed 1" in out
        status = json.loads((inbox / ".dropreel" / "prompt" / "status.json").read_text())
        assert status["state"] == "failed" and status["attempt"] == 1
        assert status["fix_by"] == "operator"
        assert (
            "the operator must fix the setup (pip install 'dropreel[engines]')" in (status["error"])
        )
        [message] = fake.messages
        seen = fake.render(message)
    assert "the operator must fix the setup" in seen
    assert "drop a file named `prompt.retry` in that folder" in seen  # how to ask again
    assert "Fix or replace the file" not in seen


def slack_env(monkeypatch, fake: FakeSlack, token: str | None = None, channel: str = "C0DROPREEL"):
    monkeypatch.setenv("DROPREEL_NOTIFIER", "slack")
    monkeypatch.setenv("DROPREEL_SLACK_BOT_TOKEN", token or fake.token)
    monkeypatch.setenv("DROPREEL_SLACK_CHANNEL", channel)
    monkeypatch.setenv("DROPREEL_SLACK_BASE_URL", fake.base_url)
    monkeypatch.setenv("DROPREEL_SLACK_ATTEMPTS", "1")


@pytest.mark.parametrize("command", [["watch", "--once"], ["serve"]])
def test_a_slack_token_slack_refuses_stops_the_start(operator, monkeypatch, capsys, command):
    with FakeSlack() as fake:
        slack_env(monkeypatch, fake, token="xoxb-revoked")
        code, _, err = run(capsys, *command, str(operator / "inbox"))
        assert [r.method for r in fake.requests] == ["auth.test"]
    assert code == 2
    assert refused(err) == [
        "Slack: Slack refused the bot token (auth.test): invalid_auth: the bot token is not "
        "valid: copy the xoxb- token of the app again"
    ]


def test_deploy_dry_run_checks_slack_too(operator, monkeypatch, capsys):
    """auth.test and conversations.info only read, so even a dry run asks Slack."""
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    with FakeSlack() as fake:
        slack_env(monkeypatch, fake, token="xoxb-revoked")
        code, out, err = run(capsys, "deploy", "--dry-run")
        assert [r.method for r in fake.requests] == ["auth.test"]
        slack_env(monkeypatch, fake, channel="C0TYPO")
        code_channel, _, err_channel = run(capsys, "deploy", "--dry-run")
    assert code == 2 and code_channel == 2 and "Modal app" not in out
    assert refused(err) == [
        "Slack: Slack refused the bot token (auth.test): invalid_auth: the bot token is not "
        "valid: copy the xoxb- token of the app again"
    ]
    assert refused(err_channel)[0].startswith("Slack: Slack refused channel C0TYPO")


def test_deploy_without_a_local_slack_token_says_it_did_not_check(
    operator, monkeypatch, capsys, caplog
):
    """The token may live only in the Modal Secret: the deploy goes on and says so (a warning
    on stderr)."""
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    monkeypatch.setenv("DROPREEL_NOTIFIER", "slack")
    monkeypatch.setenv("DROPREEL_SLACK_CHANNEL", "C0DROPREEL")
    code, out, _ = run(capsys, "deploy", "--dry-run")
    assert code == 0 and "Modal app" in out
    assert "Slack not checked: no SLACK_BOT_TOKEN here" in caplog.text


def test_a_slack_channel_slack_does_not_know_stops_the_start(operator, monkeypatch, capsys):
    with FakeSlack() as fake:
        slack_env(monkeypatch, fake, channel="C0TYPO")
        code, _, err = run(capsys, "watch", "--once", str(operator / "inbox"))
        assert [r.method for r in fake.requests] == ["auth.test", "conversations.info"]
    assert code == 2
    [line] = refused(err)
    assert line.startswith("Slack: Slack refused channel C0TYPO (conversations.info): ")
    assert "channel_not_found" in line and "DROPREEL_SLACK_CHANNEL" in line


def test_an_archived_slack_channel_stops_the_start(operator, monkeypatch, capsys):
    with FakeSlack() as fake:
        fake.archived.add("C0DROPREEL")
        slack_env(monkeypatch, fake)
        code, _, err = run(capsys, "watch", "--once", str(operator / "inbox"))
    assert code == 2
    assert "the channel is archived" in refused(err)[0]


def test_working_slack_settings_start_and_a_console_line_per_job(operator, monkeypatch, capsys):
    """A foreground watch with DROPREEL_NOTIFIER=slack posts to Slack and prints each job."""
    folder = operator / "inbox" / "team"
    folder.mkdir(parents=True)
    (folder / "ana.png").write_bytes(png())
    (folder / "ana.wav").write_bytes(wav(0.5))
    with FakeSlack() as fake:
        slack_env(monkeypatch, fake)
        code, out, err = run(capsys, "watch", "--once", "--settle", "0", str(operator / "inbox"))
        assert code == 0, err
        methods = [r.method for r in fake.requests]
    assert methods[:2] == ["auth.test", "conversations.info"]
    assert "chat.postMessage" in methods
    assert "[dropreel] done: team/ana" in out


@pytest.mark.parametrize("root", ["inbox", "./inbox", "ABSOLUTE"])
def test_a_plain_path_is_a_watch_root(operator, capsys, root):
    folder = operator / "inbox" / "ideas"
    folder.mkdir(parents=True)
    (folder / "prompt.json").write_bytes(prompt("dawn", duration_seconds=0.5))
    where = str(operator / "inbox") if root == "ABSOLUTE" else root
    code, out, err = run(capsys, "watch", "--once", "--settle", "0", where)
    assert code == 0, err
    assert "done 1, failed 0" in out
    assert (folder / "prompt.mp4").exists()
    code, out, _ = run(capsys, "status", where)
    assert code == 0 and "ideas/prompt" in out and "done" in out


def test_a_bad_value_is_one_readable_line(operator, monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_POLL_SECONDS", "5s")
    code, _, err = run(capsys, "watch", str(operator / "inbox"))
    assert code == 2
    assert refused(err) == [
        "DROPREEL_POLL_SECONDS='5s': input should be a valid number, unable to parse string "
        "as a number"
    ]


def test_a_json_setting_that_is_not_json_is_one_line(operator, monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_MODAL_GPU", "{not json")
    code, _, err = run(capsys, "watch", str(operator / "inbox"))
    assert code == 2
    assert refused(err) == [
        "DROPREEL_MODAL_GPU is not valid JSON: write it as JSON, e.g. "
        '{"ltx-video": "L40S"} or ["A", "B"]'
    ]


def test_status_of_a_mistyped_folder_creates_nothing(operator, capsys):
    code, _, err = run(capsys, "status", str(operator / "inbxo"))
    assert code == 2
    assert refused(err) == [
        f"{operator / 'inbxo'} is not a folder: check the watch root (nothing was created)"
    ]
    assert not (operator / "inbxo").exists()


@pytest.mark.parametrize(
    ("argv", "package", "extra"),
    [
        (["serve"], "fastapi", "webhook"),
        (["deploy", "--dry-run"], "modal", "modal"),
        (["weights", "pull", "ltx-video"], "huggingface_hub", "engines"),
        (["weights", "pull", "ltx-video", "--modal"], "modal", "modal"),
    ],
)
def test_a_command_without_its_extra_names_the_extra(
    operator, monkeypatch, capsys, argv, package, extra
):
    block(monkeypatch, package)
    code, _, err = run(capsys, *argv)
    assert code == 2
    command = " ".join(argv[:2] if argv[0] == "weights" else argv[:1])
    assert refused(err) == [
        f"dropreel {command} needs the Python package {package!r}, which is not installed: "
        f"pip install 'dropreel[{extra}]'"
    ]
