"""The deployed app, imported in a subprocess with only what a Modal container gets: the image's
env (its Volume mounted at a temporary folder), the settings `dropreel deploy` ships and the
Secrets' keys. On moto's S3 it answers an SNS subscription confirmation and a notification,
runs a poller tick, and renders with an engine class on tiny weights read from the Volume.

The deploying machine's own settings (a local weights folder, a CPU device, a two-topic list
written comma-separated) are set while the plan is built, as on a real laptop.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from infra.cli import samples
from infra.modal import plan as modal_plan
from tests.modal_helpers import decode_mp4, drop, load_app, read_json

ROOT = Path(__file__).resolve().parents[1]
TOPICS = ["arn:aws:sns:us-east-1:123456789012:dropreel-a", "arn:aws:sns:us-east-1:1:dropreel-b"]
LTX_PROMPT = {
    "prompt": "a red fox walks in the city at night",
    "engine": "ltx-video",
    "steps": 2,
    "seed": 7,
    "duration_seconds": 0.4,
    "width": 96,
    "height": 64,
}


def container_env(plan, volume: Path, home: Path) -> dict[str, str]:
    """Image env (the Volume path swapped for `volume`), shipped settings, the Secrets' keys."""
    image_env = {
        key: value.replace(modal_plan.WEIGHTS_PATH, str(volume), 1)
        for key, value in plan.image_env.items()
    }
    secrets = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    base = {"PATH": os.environ["PATH"], "HOME": str(home), "PYTHONPATH": str(ROOT)}
    return {**base, **image_env, **plan.deployed_settings, **secrets}


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & ~0o222)


@pytest.fixture
def laptop(monkeypatch, moto_endpoint, bucket, tmp_path):
    """The deploying machine's settings, including ones that must not reach the containers."""
    for key, value in {
        "DROPREEL_WATCH_ROOT": f"s3://{bucket}/inbox/",
        "DROPREEL_ENDPOINT_URL": moto_endpoint,
        "DROPREEL_REGION": "us-east-1",
        "DROPREEL_SETTLE_SECONDS": "0",
        "DROPREEL_LEASE_SECONDS": "600",
        "DROPREEL_NOTIFIER": "none",
        "DROPREEL_WEBHOOK_SNS_TOPIC_ARNS": ",".join(TOPICS),
        "DROPREEL_HF_CACHE_DIR": str(tmp_path / "laptop-hf"),
        "DROPREEL_WEIGHTS_DIR": str(tmp_path / "laptop-weights"),
        "DROPREEL_TALKING_HEAD_DEVICE": "cpu",
        "DROPREEL_NOTIFY_LOG": str(tmp_path / "laptop.jsonl"),
    }.items():
        monkeypatch.setenv(key, value)
    return load_app().PLAN


def test_deployed_app_runs_webhook_poller_and_engine_with_only_container_env(
    laptop, s3_client, bucket, tmp_path
):
    from tests.tiny_models import populate_cache

    volume = tmp_path / "volume"
    populate_cache(volume / "huggingface" / "hub", ["ltx-video"])
    read_only(volume)  # engine classes mount the weights Volume read-only
    drop(
        s3_client,
        bucket,
        {
            "inbox/alice/alice.png": samples.portrait_png(96, 128),
            "inbox/alice/alice.wav": samples.voice_wav(seconds=0.6),
            "inbox/boat/prompt.json": json.dumps(LTX_PROMPT).encode(),
        },
    )
    env = container_env(laptop, volume, tmp_path)
    assert not any(str(tmp_path / "laptop") in v for v in env.values())

    done = subprocess.run(
        [sys.executable, "-m", "tests.modal_container", bucket, "inbox/alice/alice.wav", "boat"],
        cwd=tmp_path,  # no .env here: a container has none
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["topics"] == TOPICS
    status_code, confirmed = out["confirmation"]
    assert status_code == 200 and confirmed == [
        "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&T=1"
    ]
    assert out["notification"] == 200
    assert out["tick"]["claimed"] == ["boat/prompt"]  # the webhook had claimed alice already
    assert out["rendered"] == {
        "alice/": {"job": "alice/alice", "result": "done", "engine": "preview"},
        "boat/": {"job": "boat/prompt", "result": "done", "engine": "ltx-video"},
    }
    status = read_json(s3_client, bucket, "inbox/boat/.dropreel/prompt/status.json")
    assert status["state"] == "done" and status["engine"] == "ltx-video"
    assert status["gpu"] == "H100"
    video = s3_client.get_object(Bucket=bucket, Key="inbox/boat/prompt.mp4")["Body"].read()
    assert decode_mp4(video)["frames"] == 9 and decode_mp4(video)["size"] == (96, 64)
    talking = s3_client.get_object(Bucket=bucket, Key="inbox/alice/alice.mp4")["Body"].read()
    assert decode_mp4(talking)["frames"] == 15
