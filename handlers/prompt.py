"""prompt.json: the one file users write by hand, parsed strictly at the edge.

Unknown fields are refused (a typo must not be silently ignored); types are strict (`"512"` is
not a width); every number has bounds; NaN, Infinity, duplicate keys and absurd nesting are
refused before validation. An error names the file, the field, the value and what is allowed.
`dropreel schema` prints the JSON Schema so editors can check prompt.json as people type.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.settings import CallbackEvent
from gpu.speech.script import MAX_SCRIPT_CHARS
from handlers.errors import InputRejected

Task = Literal["text_to_video", "image_to_video", "talking_head", "dubbing"]
Profile = Literal["fast", "balanced", "quality", "low_vram"]
NOTIFY_FIELDS = frozenset({"slack_channel", "callback_url", "callback_events"})
"""Fields that say who hears about the job, not how to render it (never an engine's input)."""
MAX_ASPECT = 4.0
MAX_DIGITS = 100


class Speaker(BaseModel):
    """One speaker of a two-speaker talking head: where the person is in the image."""

    model_config = ConfigDict(extra="forbid", strict=True)

    box: list[int] = Field(
        min_length=4,
        max_length=4,
        description="[x0, y0, x1, y1] in image pixels, x across: the person's face and body.",
    )


class PromptFile(BaseModel):
    """The contents of prompt.json (all fields optional except where the job kind needs them)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        str_strip_whitespace=True,
        title="dropreel prompt.json",
        json_schema_extra={"additionalProperties": False},
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
    parallel: bool | None = Field(
        None,
        description="Talking heads longer than one segment: false renders one continuous video "
        "on one GPU instead of segments cut at pauses on many (docs/TALKING_HEAD.md).",
    )
    speech: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_SCRIPT_CHARS,
        description="Text to speak (with an image: a talking head saying it; like script.txt).",
    )
    voice: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="A preset voice of the speech engine (script jobs).",
    )
    language: str | None = Field(
        None,
        min_length=2,
        max_length=16,
        pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]+)?$",
        description="Language of the script, as a code such as en or fr (script jobs).",
    )

    speakers: list[Speaker] | None = Field(
        None,
        min_length=2,
        max_length=2,
        description="Two-speaker jobs: speaker 1's box, then speaker 2's (default: the left "
        "and right halves of the image).",
    )
    speaking: Literal["turns", "together"] | None = Field(
        None,
        description="Two-speaker jobs: turns (speaker 1's recording, then speaker 2's) or "
        "together (both from the start; the default).",
    )

    slack_channel: str | None = Field(
        None,
        min_length=2,
        max_length=80,
        pattern=r"^#?[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Slack channel for this job's messages (an id like C0123ABCD, or #name).",
    )
    callback_url: str | None = Field(
        None,
        max_length=2000,
        pattern=r"^https?://[^\s]+$",
        description="URL that receives this job's signed JSON callbacks (docs/CALLBACKS.md).",
    )
    callback_events: list[CallbackEvent] | None = Field(
        None, min_length=1, description="Which events to send: claimed, progress, done, failed."
    )

    @field_validator("prompt", "negative_prompt", "speech")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None:
            for ch in value:
                if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cs"):
                    raise ValueError(f"contains the control character U+{ord(ch):04X}; remove it")
        return value

    @model_validator(mode="after")
    def _sane_shape(self) -> PromptFile:
        if self.width and self.height:
            ratio = max(self.width, self.height) / min(self.width, self.height)
            if ratio > MAX_ASPECT:
                raise ValueError(
                    f"width x height = {self.width}x{self.height} is a {ratio:.1f}:1 frame; at "
                    f"most {MAX_ASPECT:.0f}:1 is allowed"
                )
        return self


class _Duplicate(ValueError):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise _Duplicate(key)
        seen[key] = value
    return seen


def _no_constants(token: str) -> Any:
    raise ValueError(token)


class _HugeNumber(str):
    """A JSON integer too long to be any field's value; kept as words so the error can name
    its field (Python refuses to convert integers of more than 4,300 digits)."""


def _whole(token: str) -> int | _HugeNumber:
    digits = len(token.lstrip("-"))
    return _HugeNumber(f"a {digits:,}-digit number") if digits > MAX_DIGITS else int(token)


def _finite(token: str) -> float:
    value = float(token)
    if value in (float("inf"), float("-inf")):
        raise ValueError(token)
    return value


def parse_prompt(data: bytes, name: str = "prompt.json", max_bytes: int = 64 * 1024) -> PromptFile:
    """Parse prompt.json bytes or raise InputRejected with a message a person can act on."""
    if len(data) > max_bytes:
        raise InputRejected(
            f"{name} is {len(data):,} bytes; a prompt file may be at most {max_bytes:,} bytes"
        )
    if not data.strip():
        raise InputRejected(
            f'{name} is empty: it must hold a JSON object such as {{"prompt": "..."}}'
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputRejected(
            f"{name} is not UTF-8 text (byte {err.start}): save it as UTF-8"
        ) from err
    try:
        raw = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=_no_constants,
            parse_float=_finite,
            parse_int=_whole,
        )
    except json.JSONDecodeError as err:
        raise InputRejected(
            f"{name} is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from err
    except _Duplicate as err:
        raise InputRejected(f"{name} sets the field {str(err)!r} twice: keep one") from err
    except ValueError as err:
        raise InputRejected(
            f"{name} uses {err}, which is not a finite number: write a plain number such as 7.5"
        ) from err
    except RecursionError as err:
        raise InputRejected(f"{name} is nested too deeply to be a prompt file") from err
    try:
        json.dumps(raw, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as err:
        raise InputRejected(
            f"{name} holds an escape such as \\ud800 that is half of a character (a lone "
            "surrogate): remove it, or write the character itself"
        ) from err
    if not isinstance(raw, dict):
        kind = {list: "list", str: "string", int: "number", float: "number"}.get(type(raw), "value")
        raise InputRejected(
            f'{name} must hold a JSON object like {{"prompt": "..."}}, not a {kind}'
        )
    try:
        return PromptFile.model_validate(raw)
    except ValidationError as err:
        raise InputRejected(f"{name}: {_explain(err)}") from err


def _explain(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        field = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            allowed = ", ".join(PromptFile.model_fields)
            parts.append(f"unknown field {field!r} (allowed fields: {allowed})")
        elif not field:  # a model-level check
            parts.append(str(e.get("ctx", {}).get("error", e["msg"])))
        else:
            given = e.get("input")
            value = (
                given if isinstance(given, _HugeNumber) else json.dumps(given, ensure_ascii=False)
            )
            if len(value) > 60:
                value = value[:57] + "..."
            reason = e.get("ctx", {}).get("error") if e["type"] == "value_error" else None
            what = f"{reason}" if reason else f"it must be {allowed_values(field)}"
            parts.append(f"{field} = {value} is not allowed: {what}")
    return "; ".join(parts)


_SHAPES = {
    "callback_url": "an http:// or https:// URL of at most 2,000 characters",
    "slack_channel": "a Slack channel id like C0123ABCD, or #name",
    "speakers": 'two objects {"box": [x0, y0, x1, y1]} (whole pixels), speaker 1 first',
}


def allowed_values(field: str) -> str:
    """What a field accepts, in words, from the model's own bounds (so it never drifts)."""
    if field.partition(".")[0] in _SHAPES:  # "speakers.0.box": about the whole field
        return _SHAPES[field.partition(".")[0]]
    info = PromptFile.model_fields[field.partition(".")[0]]  # "callback_events.0": an item
    annotation = info.annotation
    inner = [a for a in get_args(annotation) if a is not type(None)] or [annotation]
    kind = inner[0]
    if get_origin(kind) is list:
        kind = get_args(kind)[0]
    if get_origin(kind) is Literal:
        return "one of " + ", ".join(repr(v) for v in get_args(kind))
    bounds: dict[str, Any] = {}
    for meta in info.metadata:
        for attr in ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern"):
            value = getattr(meta, attr, None)
            if value is not None:
                bounds[attr] = value
    if kind is str:
        low, high = bounds.get("min_length", 0), bounds.get("max_length")
        text = f"text of {low} to {high} characters" if high else "text"
        if "pattern" in bounds:
            text += " using a-z, 0-9, '.', '_' and '-'"
        return text
    noun = "a whole number" if kind is int else "a number"
    if "gt" in bounds:
        return f"{noun} above {bounds['gt']} and at most {bounds['le']}"
    return f"{noun} from {bounds['ge']} to {bounds['le']}"


def video_engines() -> list[str]:
    """The registered engines a prompt.json may name (those that make a kind of video)."""
    from config.kinds import JobKind
    from gpu.registry import ENGINES, get_spec

    get_spec("preview")  # the built-in registrations
    kinds = set(JobKind)
    return sorted(name for name, spec in ENGINES.items() if kinds & set(spec.kinds))


def json_schema() -> dict:
    """The JSON Schema of prompt.json (draft 2020-12), for editors and `dropreel schema`."""
    schema = PromptFile.model_json_schema()
    engine = schema["properties"]["engine"]["anyOf"][0]
    engine["enum"] = video_engines()  # editors catch a mistyped engine as people type
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return schema
