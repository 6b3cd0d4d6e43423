"""`dropreel deploy --dry-run` and `dropreel weights pull`: offline, checked on their output."""

from __future__ import annotations

import json
import sys

import pytest

from config.costs import UnknownGpu, job_cost, usd_per_hour
from gpu.registry import ENGINES, EngineSpec
from infra.cli import deploy as cli_deploy
from infra.cli.main import main
from infra.notify.fake_slack import FakeSlack

APP_MODULE = "infra.modal.app"


@pytest.fixture(autouse=True)
def fresh_app():
    """Each test imports the app under its own environment."""
    sys.modules.pop(APP_MODULE, None)
    yield
    sys.modules.pop(APP_MODULE, None)


@pytest.fixture
def s3_env(monkeypatch):
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    monkeypatch.setenv("DROPREEL_ENDPOINT_URL", "https://acct.r2.cloudflarestorage.com")
    monkeypatch.setenv("DROPREEL_LEASE_SECONDS", "900")


@pytest.fixture
def slack():
    """The deploy checks the Slack token (auth.test) and channel: a fake Slack that knows them."""
    with FakeSlack(token="xoxb-do-not-print", channels={"C0123": "dropreel"}) as fake:
        yield fake


def test_dry_run_prints_functions_schedules_gpus_volumes_secrets(
    s3_env, monkeypatch, capsys, slack
):
    monkeypatch.setenv("DROPREEL_NOTIFIER", "slack")
    monkeypatch.setenv("DROPREEL_SLACK_CHANNEL", "C0123")
    monkeypatch.setenv("DROPREEL_SLACK_BOT_TOKEN", "xoxb-do-not-print")
    monkeypatch.setenv("DROPREEL_SLACK_BASE_URL", slack.base_url)
    monkeypatch.setitem(
        ENGINES,
        "tiny_gpu",
        EngineSpec("tiny_gpu", ("text_to_video",), "gpu.preview:PreviewEngine", gpu="H100"),
    )

    assert main(["deploy", "--dry-run"]) == 0
    out = capsys.readouterr().out

    assert "nothing was sent to Modal" in out
    assert (
        "poll           schedule Period(seconds=60.0); cpu image, gpu none, containers 0..1" in out
    )
    assert "webhook        web (ASGI), 50 concurrent requests per container" in out
    assert "EnginePreview        engine preview" in out
    assert "gpu none, cpu 2 cores, memory 4 GiB, on the cpu image" in out
    assert (
        "EngineTinyGpu        engine tiny_gpu (text_to_video); gpu H100, cpu 8 cores, memory "
        "80 GiB, on the gpu image" in out
    )
    assert "timeout 3600s, Modal retries 0, memory snapshot on, ~$3.95/hour" in out
    assert "retries: owned by dropreel's lease take-back" in out
    assert "dropreel-weights at /weights" in out
    assert (
        "dropreel-storage: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY; used by all functions" in out
    )
    [slack_line] = [line for line in out.splitlines() if "dropreel-slack:" in line]
    assert "dropreel-slack: DROPREEL_SLACK_BOT_TOKEN; used by poll, webhook, " in slack_line
    assert "EnginePreview" in slack_line and "EngineTinyGpu" in slack_line
    assert "DROPREEL_WATCH_ROOT=s3://media/inbox/" in out
    assert "xoxb-do-not-print" not in out
    assert "problem" not in out and "warning" not in out


def test_dry_run_json(s3_env, monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_MODAL_POLL_CRON", "*/5 * * * *")
    assert main(["deploy", "--dry-run", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [f["name"] for f in d["functions"]] == ["poll", "webhook", "pull_weights"]
    assert "*/5 * * * *" in d["functions"][0]["schedule"]
    assert d["schedule"] == "cron '*/5 * * * *' (UTC)"
    engines = {e["class"]: e for e in d["engines"]}
    engine = engines["EnginePreview"]
    assert engine["volumes"] == {"/weights": "dropreel-weights"}
    assert (engine["gpu"], engine["cpu"], engine["memory_mib"]) == (None, 2.0, 4096)
    assert engine["retries"] == 0 and "lease take-back" in d["retries_owner"]
    assert {s["name"] for s in d["secrets"]} == {"dropreel-storage", "dropreel-webhook"}


def test_dry_run_reports_problems_and_deploy_refuses(monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"preview": "Z9"}')
    assert main(["deploy", "--dry-run"]) == 1
    out = capsys.readouterr().out
    assert "problem: DROPREEL_WATCH_ROOT is 'file://./inbox'" in out
    assert "GPU 'Z9' is not one Modal offers" in out

    ran = []
    monkeypatch.setattr(cli_deploy.subprocess, "run", lambda *a, **k: ran.append(a))
    assert main(["deploy"]) == 2
    assert ran == []  # modal deploy never started
    assert "fix the problems above" in capsys.readouterr().err


def test_short_lease_with_gpu_engines_warns(s3_env, monkeypatch, capsys):
    monkeypatch.setenv("DROPREEL_LEASE_SECONDS", "120")
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"preview": "L4"}')
    assert main(["deploy", "--dry-run"]) == 0
    assert "warning: DROPREEL_LEASE_SECONDS=120 is shorter than a GPU cold start" in (
        capsys.readouterr().out
    )


def test_deploy_runs_modal_deploy_on_the_app_module(s3_env):
    argv = cli_deploy.deploy_argv("staging")
    assert argv[1:] == ["-m", "modal", "deploy", "-m", "infra.modal.app", "--env", "staging"]
    assert (cli_deploy.ROOT / "infra" / "modal" / "app.py").is_file()


def test_weights_pull_for_an_engine_without_weights(capsys):
    assert main(["weights", "pull", "preview"]) == 0
    assert (
        json.loads(capsys.readouterr().out)["message"] == "engine 'preview' has no weights to pull"
    )
    assert main(["weights", "pull", "nope"]) == 2
    assert "no engine named 'nope'" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:.*executing locally and will not have access")
def test_weights_pull_function_runs_locally(s3_env):
    from tests.modal_helpers import load_app

    assert load_app().pull_weights.local("preview")["repos"] == []


def test_gpu_prices():
    assert usd_per_hour("H100") == pytest.approx(3.95)
    assert usd_per_hour("h100:2") == pytest.approx(7.9)
    assert usd_per_hour("H100!") == pytest.approx(3.95)
    assert usd_per_hour(None, 2.0) == pytest.approx(0.094)
    assert usd_per_hour("L40S", overrides={"l40s": 1.5}) == pytest.approx(1.5)
    with pytest.raises(UnknownGpu, match="not one Modal offers"):
        usd_per_hour("V100")
    assert job_cost(3600, 1.95) == pytest.approx(1.95)
