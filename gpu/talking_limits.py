"""A talking-head job's profile and the longest recording it takes, one rule for every engine.

Each talking-head engine's profiles carry a `name` and a `max_seconds`; a recording over the
chosen profile's limit is refused in the same words everywhere, naming the profile that allows
more when there is one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gpu.errors import InputError
from gpu.media import AudioInfo


def pick_profile(requested: str | None, default: str, profiles: Mapping[str, Any]) -> Any:
    """The job's profile (prompt.json `profile`, else the engine's default), or InputError."""
    name = requested or default
    if name not in profiles:
        raise InputError(f"profile {name!r} is not one of {', '.join(profiles)}")
    return profiles[name]


def check_longest(audio: AudioInfo, profile: Any, profiles: Mapping[str, Any], what: str) -> None:
    """InputError when `audio` outlasts the profile's `max_seconds` for a `what` (e.g. "video")."""
    seconds = audio.seconds
    if seconds <= profile.max_seconds:
        return
    longest = max(profiles.values(), key=lambda p: p.max_seconds)
    hint = (
        f", or use the {longest.name} profile (up to {longest.max_seconds:.0f} s)"
        if longest.max_seconds > profile.max_seconds
        else ""
    )
    raise InputError(
        f"{audio.name} is {seconds:.1f} s long; the {profile.name} profile makes "
        f"{what}s of at most {profile.max_seconds:.0f} s: cut the recording "
        f"into shorter parts{hint}"
    )
