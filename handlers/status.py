"""status.json: what a person (or `dropreel status`) reads about one job.

Written by the worker holding the lease at every transition; never read by the poller.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from handlers.storage import Storage


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class JobStatus(BaseModel):
    """The status document. `error` is in plain words; secrets never appear here."""

    state: str = Field(description="queued | running | done | failed")
    job: str
    kind: str | None = None
    version: str
    attempt: int = 1
    max_attempts: int = 1
    engine: str | None = None
    preview: bool = False
    inputs: list[str] = Field(default_factory=list)
    output: str | None = None
    stage: str | None = None
    progress: dict[str, int] | None = None
    timings: dict[str, float] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    adjustments: list[str] = Field(default_factory=list)
    video: dict[str, Any] | None = None
    error: str | None = None
    notification: str | None = None
    worker: str | None = None
    updated_at: str = Field(default_factory=utcnow)
    gpu: str | None = Field(None, description="Hardware billed for the job: a GPU type, or cpu.")
    gpu_seconds: float | None = Field(None, description="Seconds the worker spent on this job.")
    cost_usd: float | None = Field(
        None, description="Estimate: gpu_seconds x the hourly price in config/costs.py."
    )


def write_status(storage: Storage, key: str, status: JobStatus) -> None:
    status.updated_at = utcnow()
    body = json.dumps(status.model_dump(), indent=2, ensure_ascii=False).encode()
    storage.put(key, body, "application/json")
