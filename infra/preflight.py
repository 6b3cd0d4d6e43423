"""Operator mistakes caught before a command starts, never blamed on a user's file later.

`watch` and `serve` render here, so they check everything: the engines and profile the settings
name exist (with the nearest real name when one is mistyped), each configured engine's packages
import on this machine, and Slack accepts the token and knows the channel. `deploy` (and
`deploy --dry-run`) checks the names and Slack, not the packages (its engines run in Modal's
images); when the Slack token is not set here (only in the Modal Secret) it says so and skips
it. Each problem is one line.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable

from config.extras import install_hint, missing_packages
from config.kinds import JobKind
from config.settings import Settings, env_name
from gpu.errors import EngineNotFound, EngineSetupError
from gpu.registry import ENGINES, EngineSpec, engine_class, get_spec
from gpu.speech.engine import SPEECH

log = logging.getLogger("dropreel")

ENGINE_SETTINGS = {
    "engine_talking_head": JobKind.TALKING_HEAD,
    "engine_dubbing": JobKind.DUBBING,
    "engine_text_to_video": JobKind.TEXT_TO_VIDEO,
    "engine_image_to_video": JobKind.IMAGE_TO_VIDEO,
    "engine_speech": SPEECH,
}
ENGINES_EXTRA = "engines"
"""The dropreel extra every model engine needs (torch, diffusers, transformers, ...)."""


class StartupError(ValueError):
    """The settings cannot work on this machine; one line per problem says what to change."""


def _nearest(name: str, known: Iterable[str]) -> str:
    near = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"did you mean {near[0]!r}? " if near else ""


def engine_problems(settings: Settings) -> tuple[list[str], list[tuple[str, EngineSpec]]]:
    """Unknown engines, engines set for a kind they do not make, an unknown profile; and the
    (setting, spec) pairs that are fine."""
    problems: list[str] = []
    found: list[tuple[str, EngineSpec]] = []
    for field, kind in ENGINE_SETTINGS.items():
        name, var = getattr(settings, field), env_name(field)
        try:
            spec = get_spec(name)
        except EngineNotFound:
            makers = sorted(n for n, s in ENGINES.items() if kind in s.kinds)
            problems.append(
                f"{var}={name!r} is not an engine: {_nearest(name, makers)}"
                f"engines for {kind}: {', '.join(makers)}"
            )
            continue
        if kind not in spec.kinds:
            makers = sorted(n for n, s in ENGINES.items() if kind in s.kinds)
            problems.append(f"{var}={name!r} does not make {kind}: use one of {', '.join(makers)}")
            continue
        found.append((var, spec))
    profile = settings.talking_head_profile
    profiles = {p for s in ENGINES.values() if JobKind.TALKING_HEAD in s.kinds for p in s.profiles}
    if profiles and profile not in profiles:
        problems.append(
            f"{env_name('talking_head_profile')}={profile!r} is not a profile: "
            f"{_nearest(profile, sorted(profiles))}profiles: {', '.join(sorted(profiles))}"
        )
    return problems, found


def package_problems(found: list[tuple[str, EngineSpec]]) -> list[str]:
    """Configured engines whose Python packages are missing on this machine: the engine's
    module itself, and for every model engine (not a preview) the `engines` extra."""
    problems = []
    for var, spec in found:
        missing = [] if spec.preview else missing_packages(ENGINES_EXTRA)
        try:
            engine_class(spec)
        except EngineSetupError as err:
            missing.insert(0, err.package)
        if missing:
            problems.append(
                f"{var}={spec.name!r} needs the Python package {missing[0]!r}, which is not "
                f"installed: {install_hint(missing[0])}, or choose another engine"
            )
    return problems


def slack_problems(settings: Settings, *, token_elsewhere: bool = False) -> list[str]:
    """A Slack bot token Slack refuses, or a channel id it does not know (auth.test and
    conversations.info, as Slack itself answers them: both only read). `token_elsewhere`: a
    deploy, whose token may live only in the Modal Secret; without one here, nothing to check."""
    if settings.notifier != "slack":
        return []
    from infra.notify.slack import (
        CHANNEL_ID,
        SlackNotificationError,
        SlackNotifier,
        bot_token,
        build_slack_notifier,
    )

    if token_elsewhere and not (bot_token(settings) or settings.slack_webhook_url):
        log.warning(
            "Slack not checked: no SLACK_BOT_TOKEN here (the deployed app reads its Modal Secret)"
        )
        return []
    try:
        notifier = build_slack_notifier(settings)
        if isinstance(notifier, SlackNotifier):
            notifier.check(look_up_channel=bool(CHANNEL_ID.match(notifier.channel)))
    except (SlackNotificationError, ValueError) as err:
        return [f"Slack: {err}"]
    return []


def check_startup(settings: Settings, *, local_engines: bool = True) -> None:
    """Raise StartupError listing every problem; `local_engines` also checks packages (what a
    process that renders here needs; a deploy's engines run in Modal's images). Slack is
    checked either way."""
    problems, found = engine_problems(settings)
    if local_engines:
        problems += package_problems(found)
    problems += slack_problems(settings, token_elsewhere=not local_engines)
    if problems:
        raise StartupError("\n".join(problems))
