"""`dropreel deploy --dry-run` and `dropreel weights pull`: offline, checked on their output."""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace
from typing import ClassVar

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
    assert "timeout 3600s, Modal retries 0, memory snapshot on, ~$4.97/hour" in out
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


def test_a_short_lease_is_fine_for_gpu_engines(s3_env, monkeypatch, capsys):
    """A lease no longer has to outlast Modal's queue and a cold start: the poller asks Modal
    about the call before it takes a job back (tests/test_modal_calls.py)."""
    monkeypatch.setenv("DROPREEL_LEASE_SECONDS", "120")
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"preview": "L4"}')
    assert main(["deploy", "--dry-run"]) == 0
    assert "DROPREEL_LEASE_SECONDS" not in capsys.readouterr().out


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
    # Modal bills a GPU container's cores and memory too
    assert usd_per_hour("H100", 8.0, memory_mib=80 * 1024) == pytest.approx(3.95 + 0.376 + 0.64)
    assert usd_per_hour("L4", 1.0, {"cpu": 0.05, "memory": 0.01}, 2048) == pytest.approx(0.87)


class FakeDeployedPull:
    """`modal.Function.from_name("dropreel", "pull_weights", environment_name=...)`."""

    calls: ClassVar[list[tuple]] = []

    def __init__(self, app, name, environment_name=None):
        self.where = (app, name, environment_name)

    def spawn(self, *args):
        FakeDeployedPull.calls.append(("spawn", self.where, args))
        return SimpleNamespace(object_id="fc-01PULL")

    def remote(self, *args):
        FakeDeployedPull.calls.append(("remote", self.where, args))
        return {"engine": args[0], "disk_gb": 41.2, "message": "pulled 1 repositories (41.2 GB)"}


@pytest.fixture
def deployed_pull(monkeypatch):
    import modal

    FakeDeployedPull.calls = []
    monkeypatch.setattr(modal.Function, "from_name", FakeDeployedPull)
    return FakeDeployedPull.calls


def test_a_modal_weights_pull_returns_at_once_and_says_how_to_follow(deployed_pull, capsys):
    argv = ["weights", "pull", "ltx-video", "--profile", "fast", "--modal", "--env", "staging"]
    assert main(argv) == 0
    assert deployed_pull == [
        ("spawn", ("dropreel", "pull_weights", "staging"), ("ltx-video", ["fast"]))
    ]
    out = capsys.readouterr().out
    assert "(call fc-01PULL); this command does not wait" in out
    assert "modal app logs dropreel --env staging" in out
    assert "modal.FunctionCall.from_id('fc-01PULL').get()" in out


def test_a_modal_weights_pull_with_wait_blocks_and_reports_sizes(deployed_pull, capsys):
    assert main(["weights", "pull", "mochi", "--modal", "--wait"]) == 0
    assert deployed_pull == [("remote", ("dropreel", "pull_weights", None), ("mochi", None))]
    assert json.loads(capsys.readouterr().out)["disk_gb"] == 41.2


def test_a_pull_reports_each_repositorys_size_and_hands_it_over_when_complete(
    monkeypatch, tmp_path
):
    import huggingface_hub

    from gpu.weights import Places, engine_spec, pull

    def snapshot_download(repo_id, *, revision, allow_patterns, cache_dir=None, local_dir=None):
        folder = tmp_path / repo_id.replace("/", "--")
        folder.mkdir(parents=True)
        (folder / "model.safetensors").write_bytes(b"\0" * 3_000_000)
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    committed: list[str] = []
    places = Places(cache_dir=str(tmp_path / "hf"), weights_dir=str(tmp_path / "w"))
    result = pull(engine_spec("mochi"), None, places, lambda repo: committed.append(repo["repo"]))
    assert committed == [r["repo"] for r in result["repos"]] == ["genmo/mochi-1-preview"]
    assert result["repos"][0]["disk_gb"] == 0.003 and result["disk_gb"] == 0.003
    assert "(0.003 GB on disk)" in result["message"]
