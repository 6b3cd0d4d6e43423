"""Helpers for the Modal tests: import the app fresh under given settings, read bucket outputs."""

from __future__ import annotations

import importlib
import io
import json
import sys
from types import ModuleType

import av

APP_MODULE = "infra.modal.app"


def load_app() -> ModuleType:
    """Import infra.modal.app anew, so it reads the current DROPREEL_* environment."""
    sys.modules.pop(APP_MODULE, None)
    return importlib.import_module(APP_MODULE)


def drop(s3_client, bucket: str, files: dict[str, bytes]) -> None:
    for key, body in files.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=body)


def read_json(s3_client, bucket: str, key: str) -> dict:
    return json.loads(s3_client.get_object(Bucket=bucket, Key=key)["Body"].read())


def decode_mp4(data: bytes) -> dict:
    """Decode every video frame; report frame count, size and whether there is an audio track."""
    with av.open(io.BytesIO(data)) as container:
        video = container.streams.video[0]
        has_audio = bool(container.streams.audio)
        frames = 0
        size = None
        for frame in container.decode(video):
            frames += 1
            size = (frame.width, frame.height)
    return {"frames": frames, "size": size, "audio": has_audio}


def events(path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
