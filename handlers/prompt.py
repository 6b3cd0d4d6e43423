"""prompt.json: the one file users write by hand, parsed strictly at the edge.

Unknown fields are refused (a typo must not be silently ignored); every number has bounds; an
error names the field, the value and what is allowed. `dropreel schema` prints the JSON Schema.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from handlers.errors import InputRejected

Task = Literal["text_to_video", "image_to_video", "talking_head"]
Profile = Literal["fast", "balanced", "quality", "low_vram"]


class PromptFile(BaseModel):
    """The contents of prompt.json (all fields optional except where the job kind needs them)."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, title="dropreel prompt.json"
    )

    task: Task | None = Field(None, description="Job kind; inferred from the files when absent.")
    engine: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[a-z0-9][a-z0-9._-]*$",
        description="Engine name (see README); the configured default when absent.",
    )
    profile: Profile | None = Field(None, description="Speed/quality trade-off of the engine.")
    prompt: str | None = Field(None, min_length=1, max_length=4000, description="What to show.")
    negative_prompt: str | None = Field(None, max_length=4000, description="What to avoid.")
    duration_seconds: float | None = Field(None, gt=0, le=600, description="Video length.")
    width: int | None = Field(None, ge=64, le=4096, description="Width in pixels.")
    height: int | None = Field(None, ge=64, le=4096, description="Height in pixels.")
    fps: int | None = Field(None, ge=1, le=60, description="Frames per second.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Random seed, for reproducing.")
    steps: int | None = Field(None, ge=1, le=200, description="Denoising steps.")
    guidance: float | None = Field(None, ge=0, le=30, description="Classifier-free guidance scale.")


def parse_prompt(data: bytes, name: str = "prompt.json", max_bytes: int = 64 * 1024) -> PromptFile:
    """Parse prompt.json bytes or raise InputRejected with a message a person can act on."""
    if len(data) > max_bytes:
        raise InputRejected(f"{name} is {len(data):,} bytes; the limit is {max_bytes:,}")
    if not data.strip():
        raise InputRejected(
            f'{name} is empty: it must hold a JSON object such as {{"prompt": "..."}}'
        )
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise InputRejected(f"{name} is not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise InputRejected(
            f"{name} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    if not isinstance(raw, dict):
        raise InputRejected(f"{name} must hold a JSON object, not a {type(raw).__name__}")
    try:
        return PromptFile.model_validate(raw)
    except ValidationError as err:
        raise InputRejected(f"{name} has invalid fields: {_explain(err)}") from err


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"]) or "(root)"
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(PromptFile.model_fields)
            parts.append(f"unknown field {field!r} (allowed: {allowed})")
        else:
            value = json.dumps(e.get("input"), ensure_ascii=False, default=str)
            if len(value) > 60:
                value = value[:57] + "..."
            parts.append(f"{field}={value}: {e['msg']}")
    return "; ".join(parts)


def json_schema() -> dict:
    schema = PromptFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
