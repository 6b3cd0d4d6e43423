"""The Modal app imports offline and declares what the deployment needs (no account, no network).

Every check reads the Modal objects themselves (`Function.info()`, which is local for a
function defined in this process) or the app module's source, not a copy of the settings.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import warnings
from pathlib import Path

import modal
import pytest

from gpu.registry import ENGINES, EngineSpec
from tests.modal_helpers import load_app

ROOT = Path(__file__).resolve().parents[1]
DEPRECATED = (
    "keep_warm",
    "concurrency_limit",
    "allow_concurrent_inputs",
    "web_endpoint",
    "container_idle_timeout",
)


@pytest.fixture
def s3_env(monkeypatch):
    monkeypatch.setenv("DROPREEL_WATCH_ROOT", "s3://media/inbox/")
    monkeypatch.setenv("DROPREEL_ENDPOINT_URL", "https://example.r2.cloudflarestorage.com")


@pytest.fixture
def gpu_engine(monkeypatch):
    """A later engine: one registration, nothing else."""
    spec = EngineSpec(
        name="tiny_gpu",
        kinds=("text_to_video", "image_to_video"),
        target="gpu.preview:PreviewEngine",
        gpu="L40S",
    )
    monkeypatch.setitem(ENGINES, spec.name, spec)
    return spec


def secret_names(info) -> set[str]:
    return {m.group(1) for s in info.secrets if (m := re.search(r"from_name\('([^']+)'", s))}


def modal_objects(module) -> dict[str, object]:
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, modal.Function | modal.Cls)
    }


def test_app_imports_offline_without_modal_warnings(s3_env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = load_app()
    modal_warnings = [w for w in caught if "modal" in (w.filename + str(w.message)).lower()]
    assert modal_warnings == []
    assert module.app.name == "dropreel"
    assert module.PLAN.problems == ()


def test_app_declares_poller_webhook_weights_and_one_class_per_engine(s3_env, gpu_engine):
    module = load_app()
    found = modal_objects(module)
    classes = {module.PLAN.engine(name).class_name for name in ENGINES}
    assert set(found) == {"poll", "webhook", "pull_weights", *classes}
    assert {"EnginePreview", "EngineTinyGpu"} <= classes
    assert set(module.ENGINE_CLASSES) == set(ENGINES) >= {"preview", "tiny_gpu"}
    for engine, cls in module.ENGINE_CLASSES.items():
        assert getattr(module, module.PLAN.engine(engine).class_name) is cls


def test_poller_is_scheduled_and_single(s3_env):
    module = load_app()
    info = module.poll.info()
    assert info.schedule == "Period(seconds=60.0)"
    assert info.gpus == []
    assert info.timeout == 300
    # never two ticks at once: one container, one input at a time (no @modal.concurrent)
    assert info.concurrency_info is None
    decorator = _decorator_keywords(module, "poll")
    assert decorator["max_containers"] == "1"
    assert secret_names(info) == {"dropreel-storage"}


def test_poll_schedule_is_configurable(s3_env, monkeypatch):
    monkeypatch.setenv("DROPREEL_MODAL_POLL_SECONDS", "120")
    assert load_app().poll.info().schedule == "Period(seconds=120.0)"
    monkeypatch.setenv("DROPREEL_MODAL_POLL_CRON", "*/2 * * * *")
    schedule = load_app().poll.info().schedule
    assert schedule.startswith("Cron(") and "*/2 * * * *" in schedule


def test_webhook_is_a_concurrent_asgi_app_with_its_secret(s3_env):
    info = load_app().webhook.info()
    assert info.web_info is not None
    assert info.concurrency_info.max_inputs == 50
    assert info.gpus == []
    assert secret_names(info) == {"dropreel-storage", "dropreel-webhook"}


def test_engine_classes_have_gpu_volume_secrets_timeout_retries(s3_env, gpu_engine):
    module = load_app()
    preview = module.EnginePreview().run.info()
    assert preview.gpus == [] and preview.cpu == 2.0 and preview.memory_mib == 4096
    assert preview.timeout == 30 * 60
    tiny = module.EngineTinyGpu().run.info()
    assert tiny.gpus == [("L40S", 1)]
    # Modal's default is 0.125 core (which also sets the BLAS threads) and 128 MiB
    assert tiny.cpu == 8.0 and tiny.memory_mib == 48 * 1024
    assert tiny.timeout == 60 * 60
    for info in (preview, tiny):
        assert info.method_names == ["run", "render_segment"]  # a segment: its own call
        assert info.max_retries == 0  # the lease take-back owns retries
        assert {p: v.name for p, v in info.volumes.items()} == {"/weights": "dropreel-weights"}
        assert secret_names(info) == {"dropreel-storage"}
    plan = module.PLAN.engine("tiny_gpu")
    assert plan.image == "gpu" and plan.memory_snapshot and plan.max_containers == 4
    assert plan.usd_per_hour == pytest.approx(1.95 + 8 * 0.047 + 48 * 0.008)  # GPU+CPU+memory


def test_gpu_timeout_and_scaling_come_from_settings(s3_env, gpu_engine, monkeypatch):
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"tiny_gpu": "H100", "preview": "T4"}')
    monkeypatch.setenv("DROPREEL_MODAL_TIMEOUT_SECONDS", '{"tiny_gpu": 5400}')
    monkeypatch.setenv("DROPREEL_MODAL_MAX_CONTAINERS", '{"tiny_gpu": 12}')
    module = load_app()
    tiny = module.EngineTinyGpu().run.info()
    assert tiny.gpus == [("H100", 1)] and tiny.timeout == 5400
    assert tiny.memory_mib == 80 * 1024
    assert module.EnginePreview().run.info().gpus == [("T4", 1)]
    assert module.PLAN.engine("tiny_gpu").max_containers == 12
    assert module.PLAN.engine("tiny_gpu").usd_per_hour == pytest.approx(
        3.95 + 8 * 0.047 + 80 * 0.008
    )


def test_slack_and_hf_secrets_attach_where_needed(s3_env, monkeypatch):
    monkeypatch.setenv("DROPREEL_NOTIFIER", "slack")
    monkeypatch.setenv("DROPREEL_SLACK_CHANNEL", "C0123")
    monkeypatch.setenv("DROPREEL_MODAL_HF_SECRET", "true")
    module = load_app()
    assert secret_names(module.poll.info()) == {"dropreel-storage", "dropreel-slack"}
    assert secret_names(module.EnginePreview().run.info()) == {
        "dropreel-storage",
        "dropreel-slack",
        "dropreel-huggingface",
    }
    assert secret_names(module.pull_weights.info()) == {"dropreel-storage", "dropreel-huggingface"}


def test_credentials_never_ship_in_deployed_settings(s3_env, monkeypatch):
    monkeypatch.setenv("DROPREEL_SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("DROPREEL_SLACK_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/secret")
    monkeypatch.setenv("DROPREEL_WORKERS", "8")
    shipped = load_app().PLAN.deployed_settings
    assert shipped["DROPREEL_WATCH_ROOT"] == "s3://media/inbox/"
    text = repr(shipped)
    assert "secret" not in text and "SLACK_BOT_TOKEN" not in text
    assert "DROPREEL_WORKERS" not in shipped  # local-only


def test_bad_configuration_is_a_plain_problem(monkeypatch):
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"preview": "V100"}')
    plan = load_app().PLAN  # imports even when misconfigured; deploy refuses
    text = " ".join(plan.problems)
    assert "local folder" in text and "s3://" in text
    assert "'V100' is not one Modal offers" in text


def test_images_are_pinned_from_pyproject(s3_env):
    packages = load_app().PLAN.packages
    assert packages.torch == ("torch==2.13.0",)
    assert not any(p.startswith(("torch", "diffusers")) for p in packages.cpu_image)
    for needed in ("diffusers", "transformers", "accelerate", "boto3", "kernels"):
        assert any(p.startswith(needed) for p in packages.gpu_image), needed
    assert not any(p.startswith("kernels") for p in packages.cpu_image)
    assert all(re.search(r"(==|~=|>=)", p) for p in packages.cpu_image + packages.gpu_image)
    source = (ROOT / "infra" / "modal" / "app.py").read_text()
    assert source.count(".add_local_python_source(*modal_plan.SOURCE_PACKAGES)") == 2
    env = load_app().PLAN.image_env
    assert env["HF_HOME"].startswith("/weights")
    # engines mount the weights Volume read-only: hub kernels are cached in the container
    assert not env["KERNELS_CACHE"].startswith("/weights")


def test_no_deprecated_modal_names_anywhere_in_the_source():
    offenders = []
    for path in ROOT.rglob("*"):
        if path.suffix not in (".py", ".md", ".toml") or ".venv" in path.parts:
            continue
        if path == Path(__file__).resolve():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for name in DEPRECATED:
            if re.search(rf"\b{name}\b", text):
                offenders.append(f"{path.relative_to(ROOT)}: {name}")
    assert offenders == []


def test_modal_app_uses_modal_namespace_only():
    tree = ast.parse((ROOT / "infra" / "modal" / "app.py").read_text())
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module == "modal"]
    assert imports == []


def test_watcher_side_imports_without_torch(tmp_path):
    """The CPU image has no torch: the app module, the runtime and the triggers import without."""
    code = (
        "import sys\n"
        "for m in ('torch', 'diffusers', 'transformers'): sys.modules[m] = None\n"
        "import infra.modal.app, infra.modal.runtime, infra.cli.deploy, triggers.poller\n"
        "print('ok')\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "DROPREEL_WATCH_ROOT": "s3://media/inbox/",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def _decorator_keywords(module, function: str) -> dict[str, str]:
    tree = ast.parse(Path(module.__file__).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "app.function":
                    return {k.arg: ast.unparse(k.value) for k in deco.keywords}
    raise AssertionError(f"no @app.function on {function}")


def test_engines_take_a_fallback_gpu_and_read_weights_only(s3_env):
    module = load_app()
    ltx = module.ENGINE_CLASSES["ltx-video"]().run.info()
    assert ltx.gpus == [("H100", 1), ("A100-80GB", 1)]  # both hold its ~48 GiB
    assert ltx.memory_mib == 80 * 1024
    wan = module.ENGINE_CLASSES["wan2.2-ti2v-5b"]().run.info()
    assert wan.gpus == [("H100", 1), ("A100-80GB", 1), ("L40S", 1)]
    assert [v.read_only for v in ltx.volumes.values()] == [True]
    pull = module.pull_weights.info()
    assert [v.read_only for v in pull.volumes.values()] == [False]  # the pull writes
    assert pull.gpus == [] and pull.cpu == 8.0  # a CPU function with cores to download
    assert module.PLAN.warnings == ()


def test_a_gpu_chosen_too_small_for_an_engine_is_a_warning(s3_env, monkeypatch):
    monkeypatch.setenv("DROPREEL_MODAL_GPU", '{"mochi": "L4"}')
    module = load_app()
    assert module.ENGINE_CLASSES["mochi"]().run.info().gpus == [("L4", 1)]  # that one only
    [warning] = module.PLAN.warnings
    assert "engine mochi: L4 has 24 GiB, less than the about 60 GiB" in warning


def test_a_container_on_a_fallback_gpu_bills_that_gpu(monkeypatch):
    import torch

    from infra.modal.runtime import gpu_in_use

    plan = load_app().PLAN.engine("ltx-video")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for device, expected in [
        ("NVIDIA A100-SXM4-80GB", "A100-80GB"),
        ("NVIDIA H100 80GB HBM3", "H100"),
        ("NVIDIA L40S", None),  # not one of the class's types
    ]:
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda _i, d=device: d)
        assert gpu_in_use(plan) == expected
