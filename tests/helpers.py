"""Small helpers for tests: inputs made in code, MP4 decoding, a runtime with a notification log,
the benches run as a user runs them."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image

from config.settings import Settings
from gpu.engine import RenderRequest
from gpu.media import load_image, probe_audio
from handlers.jobs import Job
from handlers.lifecycle import RunOutcome
from handlers.runtime import Runtime
from infra.cli import samples
from infra.local_dispatch import InlineDispatcher
from infra.notify.notifiers import JsonLinesNotifier
from triggers.poller import tick


def png(width: int = 64, height: int = 64, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def wav(seconds: float = 0.6, rate: int = 16_000, seed: int = 0) -> bytes:
    return samples.voice_wav(seconds, rate, seed)


def decoded_request(
    kind: str, image: Path | None = None, audio: Path | None = None, **values
) -> RenderRequest:
    """A RenderRequest with its files decoded as the lifecycle does, under the default limits."""
    limits = Settings.model_fields
    return RenderRequest(
        kind=kind,
        image=load_image(image, limits["max_image_pixels"].default) if image else None,
        audio=probe_audio(audio, limits["max_audio_seconds"].default, 0.0) if audio else None,
        **values,
    )


def prompt(text: str = "a red kite over the sea", **extra) -> bytes:
    return json.dumps({"prompt": text, **extra}).encode()


@dataclass
class VideoInfo:
    frames: int
    width: int
    height: int
    fps: float
    duration: float
    audio_seconds: float | None
    codec: str


def decode_mp4(data: bytes, tmp: Path) -> VideoInfo:
    """Decode every frame and audio sample: what a player would show."""
    path = tmp / "check.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        frames = sum(1 for _ in c.decode(v))
        fps = float(v.average_rate)
        width, height, codec = v.codec_context.width, v.codec_context.height, v.codec_context.name
    audio_seconds = None
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            samples_ = sum(f.samples for f in c.decode(a))
            audio_seconds = samples_ / a.rate
    return VideoInfo(frames, width, height, fps, frames / fps, audio_seconds, codec)


class Notifications:
    """A JSON-lines notification log shared by every worker (threads or processes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.notifier = JsonLinesNotifier(path)

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]


class Renders(list):
    """`Runtime.on_start` observer: the names of the jobs a runtime started, in order."""

    def __call__(self, job: Job) -> None:
        self.append(job.name)


def started(rt: Runtime) -> Renders:
    """The jobs `rt` started rendering, in order (built with `on_start=Renders()`)."""
    assert isinstance(rt.on_start, Renders), "build the runtime with on_start=Renders()"
    return rt.on_start


class Outcomes(dict):
    """`on_result` observer of a local dispatcher: job name -> how its last run ended."""

    def __call__(self, job: Job, outcome: RunOutcome) -> None:
        self[job.name] = outcome


def runtime(storage, settings, notes: Notifications) -> Runtime:
    return Runtime(storage=storage, settings=settings, notifier=notes.notifier, on_start=Renders())


def run_tick(rt: Runtime):
    """One poller tick with renders done inline; returns the tick report."""
    return tick(rt, InlineDispatcher(rt))


def status(storage, key: str) -> dict:
    return json.loads(storage.get(key))


def open_leases(keys) -> list[str]:
    """The leases among `keys` with no done, failed or cancelled marker beside them: claims
    still held, or outcomes whose notification is not recorded as sent. A decided version keeps
    its lease a while (handlers/claims.py, "kept lease"): that one is not open."""
    keys = set(keys)
    return sorted(
        key
        for key in keys
        if key.endswith(".lease")
        and not any(key[: -len("lease")] + end in keys for end in ("done", "failed", "cancelled"))
    )


ROOT = Path(__file__).resolve().parents[1]


def run_bench(script: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """`python bench/<script> <args>` from the repository root, its output captured (600 s: a
    hang guard, not a speed claim)."""
    return subprocess.run(
        [sys.executable, f"bench/{script}", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=check,
        timeout=600,
    )


def bench_json(script: str, *args: str) -> dict:
    """The JSON line a bench prints last."""
    return json.loads(run_bench(script, *args).stdout.strip().splitlines()[-1])
