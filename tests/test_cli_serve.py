"""`dropreel serve` starts the webhook on loopback and answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from tests.webhook_support import wait_for

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_answers_on_loopback(s3_storage, moto_endpoint, bucket):
    port = _free_port()
    env = {
        **os.environ,
        "DROPREEL_WATCH_ROOT": s3_storage.url,
        "DROPREEL_ENDPOINT_URL": moto_endpoint,
        "DROPREEL_REGION": "us-east-1",
        "DROPREEL_NOTIFIER": "none",
        "DROPREEL_WEBHOOK_S3_TOKEN": "serve-token",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "infra.cli.main", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for(healthy, timeout=60, interval=0.1)
        response = httpx.post(
            f"http://127.0.0.1:{port}/events/s3",
            json={"Records": []},
            headers={"authorization": "Bearer serve-token"},
        )
        assert response.status_code == 200
        assert response.json()["events"] == 0
        assert httpx.post(f"http://127.0.0.1:{port}/events/s3", json={}).status_code == 401
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert f"on http://127.0.0.1:{port}" in output
    assert "sources enabled: s3" in output
    assert "serve-token" not in output
