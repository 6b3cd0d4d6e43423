"""Which engine renders a job version, and with which prompt.json values.

Decided once per version: by a local worker as the first step of the lifecycle, or by the
trigger that hands the job to a Modal engine class (the ticket then carries the decision and
the worker trusts it). It reads only the listing and prompt.json, never the image or audio, so
it is cheap enough for a trigger.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from config.settings import Settings
from gpu.errors import EngineNotFound
from gpu.registry import get_spec
from handlers import folder_settings, validate
from handlers.errors import InputRejected
from handlers.jobs import Job
from handlers.prompt import PromptFile, parse_prompt
from handlers.storage import Storage


@dataclass(frozen=True)
class Route:
    """The engine for a job and its prompt: prompt.json over the folder settings (None for a
    job with neither). `folder_settings`: what the settings files gave, and from which file."""

    engine: str
    prompt: PromptFile | None = None
    folder_settings: dict[str, dict[str, Any]] = field(default_factory=dict)


def route(storage: Storage, job: Job, settings: Settings) -> Route:
    """Check sizes from the listing, read and check prompt.json, pick the engine.

    Raises InputRejected (the user's move) or EngineNotFound (the configured default engine
    does not exist: the operator's move); both are permanent.
    """
    validate.check_pairing(job)
    validate.check_sizes(job.inputs, settings)
    name = file_name(job.prompt)
    own = (
        parse_prompt(storage.get(job.prompt.key), name, settings.max_prompt_bytes)
        if job.prompt
        else None
    )
    defaults = folder_settings.resolve(storage, job.folder, settings.max_prompt_bytes)
    prompt = defaults.apply(own, name)
    mark_speech(job, prompt)
    validate.check_prompt(job.kind, prompt, name)
    validate.check_speech(job, own)  # script-only fields set for a whole folder are no error
    engine_from = defaults.sources.get("engine") if own is None or not own.engine else name
    engine = resolve_engine(job, prompt, settings, engine_from or name)
    return Route(engine, prompt, defaults.describe(own))


def mark_speech(job: Job, prompt: PromptFile | None) -> None:
    """A "speech" field in prompt.json makes a portrait a talking head spoken from that text;
    only prompt.json says so, so the kind the listing gave is settled here."""
    job.speech_in_prompt = bool(prompt and prompt.speech)


def resolve_engine(
    job: Job, prompt: PromptFile | None, settings: Settings, engine_from: str | None = None
) -> str:
    """The engine named by `prompt` (set in the file `engine_from`) or the configured default."""
    if prompt and prompt.task and prompt.task != job.kind:
        raise InputRejected(
            f"prompt.json says task={prompt.task!r} but the files make a {job.kind} job "
            "(image + audio or script = talking_head, prompt + image = image_to_video, prompt "
            "alone = text_to_video): fix the task field or the files"
        )
    name = (prompt.engine if prompt and prompt.engine else None) or settings.engine_for(job.kind)
    try:
        spec = get_spec(name)
    except EngineNotFound as err:
        if prompt and prompt.engine:
            where = engine_from or file_name(job.prompt)
            raise InputRejected(f"{where}: {err}: fix the engine field") from err
        raise
    if job.kind not in spec.kinds:
        raise InputRejected(
            f"engine {name!r} does not make {job.kind} videos; it makes {', '.join(spec.kinds)}"
        )
    return name


def file_name(obj: object) -> str:
    """The user's file name of an input object (prompt.json when there is none)."""
    return getattr(obj, "key", "prompt.json").rpartition("/")[2]
