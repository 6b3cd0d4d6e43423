"""What `dropreel deploy` ships to the containers parses back there to the same values, and
nothing about the deploying machine (its folders, its devices) ships at all.

The container side is `Settings()` under an environment holding only what a container gets:
the shipped settings, the Secrets' keys and the image's env, with no `.env` file around.
"""

from __future__ import annotations

import os
import typing

import pytest
from pydantic import SecretStr

from config.settings import MACHINE_LOCAL, Settings
from infra.modal import plan as modal_plan

# Values a generic rule cannot pick (the watch root must be s3://, a probe of each kind).
SAMPLES: dict[str, object] = {
    "watch_root": "s3://media/in box/",
    "webhook_sns_topic_arns": [
        "arn:aws:sns:us-east-1:123456789012:dropreel-a",
        "arn:aws:sns:eu-west-1:123456789012:dropreel-b",
    ],
    "modal_gpu": {"ltx-video": "L40S", "odd, name": "A100-80GB"},
    "modal_poll_cron": "*/2 * * * *",
    "gpu_prices": {"H100": 3.5, "L40S": 1.25},
    "link_expiry_seconds": 3600,
    "callback_url": "https://hooks.example.com/dropreel?a=1,b=2",
    "callback_events": ["done", "failed"],
    "callback_hosts": ["n8n.example.com", ".example.org"],
    "parallel_crossfade_seconds": 0.25,  # at most 0.5
}
PATH_OR_DEVICE = ("_dir", "_path", "_device", "_log", "_file")


@pytest.fixture(autouse=True)
def no_dropreel_env(monkeypatch):
    """Settings built here read only their arguments (other tests' fixtures may leave some)."""
    for key in [k for k in os.environ if k.startswith("DROPREEL_")]:
        monkeypatch.delenv(key)


def sample(name: str) -> object:
    """A valid value for `name` that differs from its default (every shipped type covered)."""
    if name in SAMPLES:
        return SAMPLES[name]
    info = Settings.model_fields[name]
    default = Settings.model_construct().__dict__.get(name)
    kind = typing.get_origin(info.annotation)
    args = [a for a in typing.get_args(info.annotation) if a is not type(None)]
    base = args[0] if kind is typing.Union or str(kind) == "<class 'types.UnionType'>" else None
    annotation = base if base is not None else info.annotation
    if annotation is SecretStr:
        return f"secret-{name}"
    if annotation is bool:
        return not default
    if annotation is int:
        return (default or 0) + 1
    if annotation is float:
        return (default or 10.0) + 12.5
    if annotation is str:
        return f"value, of {name}"
    if typing.get_origin(annotation) is typing.Literal:
        return next(c for c in typing.get_args(annotation) if c != default)
    origin = typing.get_origin(annotation)
    if origin is dict:
        value_type = typing.get_args(annotation)[1]
        return {"ltx-video": value_type(7), "wan, 2": value_type(9)}
    if origin is list:
        return ["A_KEY", "B_KEY"]
    raise AssertionError(f"add a sample value for setting {name} ({info.annotation})")


def everything_set() -> Settings:
    values = {name: sample(name) for name in Settings.model_fields}
    return Settings(_env_file=None, **values)


def container_settings(monkeypatch, tmp_path, env: dict[str, str]) -> Settings:
    """`Settings()` as a container builds it: only `env`, no .env file in its directory."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return Settings()


def secrets_env(settings: Settings) -> dict[str, str]:
    """What the named Modal Secrets carry: each credential under its DROPREEL_* name."""
    return {
        modal_plan.env_name(name): value.get_secret_value()
        for name in Settings.model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    }


def test_every_shipped_setting_parses_back_to_the_same_value(monkeypatch, tmp_path):
    local = everything_set()
    shipped = modal_plan.deployed_settings(local)
    env = {**shipped, **secrets_env(local)}

    remote = container_settings(monkeypatch, tmp_path, env)

    differ = {
        name: (getattr(local, name), getattr(remote, name))
        for name in Settings.model_fields
        if name not in MACHINE_LOCAL and getattr(local, name) != getattr(remote, name)
    }
    assert differ == {}
    assert remote.webhook_sns_topic_arns == SAMPLES["webhook_sns_topic_arns"]
    assert remote.slack_bot_token.get_secret_value() == "secret-slack_bot_token"
    # every setting but the machine-local ones and the credentials travels in the shipped env
    expected = {
        modal_plan.env_name(n)
        for n in Settings.model_fields
        if n not in MACHINE_LOCAL and not modal_plan.is_secret(n)
    }
    assert set(shipped) == expected


def test_settings_left_at_their_defaults_and_none_stay_so(monkeypatch, tmp_path):
    local = Settings(_env_file=None, watch_root="s3://media/inbox/", heartbeat_seconds=None)
    shipped = modal_plan.deployed_settings(local)
    assert shipped == {"DROPREEL_WATCH_ROOT": "s3://media/inbox/"}
    remote = container_settings(monkeypatch, tmp_path, shipped)
    assert remote.model_dump() == local.model_dump()


def test_a_comma_separated_topic_list_still_parses(monkeypatch, tmp_path):
    env = {
        "DROPREEL_WEBHOOK_SNS_TOPIC_ARNS": "arn:aws:sns:us-east-1:1:a, arn:aws:sns:us-east-1:1:b"
    }
    remote = container_settings(monkeypatch, tmp_path, env)
    assert remote.webhook_sns_topic_arns == [
        "arn:aws:sns:us-east-1:1:a",
        "arn:aws:sns:us-east-1:1:b",
    ]


def test_shipped_settings_never_hold_a_machine_local_path_or_device(monkeypatch, tmp_path):
    local = Settings(
        _env_file=None,
        watch_root="s3://media/inbox/",
        hf_cache_dir="/home/me/hf-cache",
        weights_dir="/home/me/weights",
        talking_head_device="cpu",
        notify_log="/home/me/events.jsonl",
        workers=8,
    )
    plan = modal_plan.build_plan(local)
    text = repr(plan.deployed_settings)
    assert "/home/me" not in text and "cpu" not in text.lower()
    assert not set(plan.deployed_settings) & {modal_plan.env_name(n) for n in MACHINE_LOCAL}
    said = " ".join(plan.notes)
    assert "DROPREEL_HF_CACHE_DIR is a setting of this machine and is not shipped" in said
    assert "DROPREEL_TALKING_HEAD_DEVICE" in said

    # in the container: the Volume's folders and the container's own device
    remote = container_settings(monkeypatch, tmp_path, {**plan.image_env, **plan.deployed_settings})
    assert remote.weights_dir == f"{modal_plan.WEIGHTS_PATH}/dropreel"
    assert remote.hf_cache_dir is None and remote.talking_head_device is None
    assert plan.image_env["HF_HOME"] == modal_plan.HF_HOME


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_path_or_device_setting_is_machine_local(name):
    """A new folder or device setting would ship the deploying machine's value: name it in
    config.settings.MACHINE_LOCAL."""
    if name.endswith(PATH_OR_DEVICE):
        assert name in MACHINE_LOCAL


def test_a_credential_no_secret_carries_is_a_warning():
    local = Settings(
        _env_file=None, watch_root="s3://media/inbox/", webhook_r2_secret="k", notifier="none"
    )
    said = " ".join(modal_plan.build_plan(local).warnings)
    assert "DROPREEL_WEBHOOK_R2_SECRET is set here but no Modal Secret carries it" in said
    carried = Settings(
        _env_file=None,
        watch_root="s3://media/inbox/",
        webhook_r2_secret="k",
        modal_webhook_secret_keys=["DROPREEL_WEBHOOK_R2_SECRET"],
    )
    assert "R2_SECRET" not in " ".join(modal_plan.build_plan(carried).warnings)
