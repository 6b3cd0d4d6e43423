"""Folder settings: a `dropreel.json` in a folder gives defaults to every job under it.

A team folder often wants one engine, profile, size or prompt field for all its jobs without a
prompt.json beside each. A settings file holds prompt.json's fields and is parsed by the same
strict parser, so it fails the same way, naming itself. Files nearer the job win, field by
field, and the job's own prompt.json wins over all of them. Nothing here names a field:
whatever prompt.json gains (a Slack channel, a callback URL) can be set per folder at once.

A settings file is never an input and is not part of a job's version: changing it renders
nothing again. It applies to the versions routed after the change; a `<stem>.retry` file
(handlers/control.py) renders a finished job again under the new settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from handlers.errors import InputRejected, ObjectNotFound
from handlers.prompt import PromptFile, _explain, parse_prompt
from handlers.storage import Storage

SETTINGS_NAME = "dropreel.json"


@dataclass(frozen=True)
class FolderSettings:
    """The defaults a folder resolved: each field's value and the file that set it."""

    values: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # field -> the settings file's key

    def describe(self, prompt: PromptFile | None = None) -> dict[str, dict[str, Any]]:
        """What status.json and `dropreel status` show: the fields these settings gave a job
        whose own prompt.json is `prompt` (its own fields win and are left out)."""
        own = prompt.model_fields_set if prompt is not None else set()
        return {
            name: {"value": value, "from": self.sources[name]}
            for name, value in self.values.items()
            if name not in own
        }

    def apply(self, prompt: PromptFile | None, name: str) -> PromptFile | None:
        """The job's prompt.json (`name`) with these defaults under its own fields."""
        if not self.values:
            return prompt
        own = prompt.model_dump(exclude_unset=True) if prompt is not None else {}
        try:
            merged = PromptFile.model_validate({**self.values, **own})
        except ValidationError as err:  # each file was valid alone: their mix is not
            files = ", ".join(sorted(set(self.sources.values())))
            mix = f"{name} with {files}" if prompt is not None else files
            raise InputRejected(f"{mix} (folder settings): {_explain(err)}") from err
        return merged


def settings_keys(folder: str) -> list[str]:
    """The settings files that apply to a job in `folder`, the watch root's first."""
    parts = [p for p in folder.split("/") if p]
    return [
        "".join(f"{p}/" for p in parts[:depth]) + SETTINGS_NAME for depth in range(len(parts) + 1)
    ]


def resolve(
    storage: Storage, folder: str, max_bytes: int, present: set[str] | None = None
) -> FolderSettings:
    """Read and merge the settings files above `folder` (one GET each; only those in
    `present` when the caller has a listing). Raises InputRejected naming a bad file."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in settings_keys(folder):
        if present is not None and key not in present:
            continue
        try:
            data = storage.get(key)
        except ObjectNotFound:
            continue
        parsed = parse_prompt(data, key, max_bytes)
        for name in parsed.model_fields_set:
            values[name], sources[name] = getattr(parsed, name), key
    return FolderSettings(values, sources)


def is_settings_file(key: str) -> bool:
    return key.rpartition("/")[2] == SETTINGS_NAME
