"""The notifier port and the event a notifier receives.

Notifiers live in `infra/` (console, JSON-lines log, Slack). A notifier must never fail a job:
the lifecycle records a notifier error in status.json and moves on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class JobEvent:
    """What people are told about a finished or failed job."""

    state: str  # "done" | "failed"
    job: str  # folder/stem
    folder: str
    kind: str | None
    engine: str | None
    version: str
    preview: bool = False
    video_key: str | None = None
    video_location: str | None = None
    video_url: str | None = None
    poster_key: str | None = None
    poster_jpeg: bytes | None = field(default=None, repr=False)
    duration_seconds: float | None = None
    width: int | None = None
    height: int | None = None
    fps: int | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    adjustments: list[str] = field(default_factory=list)
    error: str | None = None
    inputs: list[str] = field(default_factory=list)
    attempts: int = 1
    gpu: str | None = None
    gpu_seconds: float | None = None
    cost_usd: float | None = None  # an estimate: see config/costs.py

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("poster_jpeg")
        return data

    def summary(self) -> str:
        """One line a person can read."""
        if self.state == "done":
            tag = " (preview)" if self.preview else ""
            size = f"{self.width}x{self.height}" if self.width else ""
            cost = f" ~${self.cost_usd:.4f} on {self.gpu}" if self.cost_usd is not None else ""
            return (
                f"done: {self.job} [{self.kind}, {self.engine}{tag}] {self.duration_seconds:.2f}s "
                f"{size} -> {self.video_location}{cost}"
            )
        return f"failed: {self.job} [{self.kind}]: {self.error}"


class Notifier(Protocol):
    def notify(self, event: JobEvent) -> None: ...
