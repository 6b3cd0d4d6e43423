"""Build a Runtime from settings: the one place that picks backends and notifiers."""

from __future__ import annotations

from config.settings import Settings
from handlers.notify import Notifier
from handlers.runtime import Runtime
from infra.local_segments import LocalSegments
from infra.notify.callbacks import CallbackSender
from infra.notify.notifiers import ConsoleNotifier, FanOutNotifier, JsonLinesNotifier, NullNotifier
from infra.storage import open_storage


class ConfigError(ValueError):
    """The settings cannot work together; the message says which to set."""


def build_notifier(settings: Settings, console: bool = False) -> Notifier:
    """The notifiers the settings name; `console` (a foreground `watch`) also prints a line
    per job when Slack is the notifier, so the person at the terminal sees each job too."""
    chosen: list[Notifier] = []
    if settings.notifier == "console":
        chosen.append(ConsoleNotifier())
    elif settings.notifier == "slack":
        from infra.notify.slack import build_slack_notifier

        if console:
            chosen.append(ConsoleNotifier())
        chosen.append(build_slack_notifier(settings))
    elif settings.notifier != "none":
        raise ConfigError(f"DROPREEL_NOTIFIER={settings.notifier!r}: use console, slack or none")
    if settings.notify_log:
        chosen.append(JsonLinesNotifier(settings.notify_log))
    if not chosen:
        return NullNotifier()
    return chosen[0] if len(chosen) == 1 else FanOutNotifier(chosen)


def build_runtime(settings: Settings, storage=None, notifier: Notifier | None = None) -> Runtime:
    return Runtime(
        storage=storage or open_storage(settings.watch_root, settings),
        settings=settings,
        notifier=notifier or build_notifier(settings),
        callbacks=CallbackSender.from_settings(settings),  # a job's prompt.json may name a URL
        segments=LocalSegments(settings.parallel_gpus),  # long talking heads, in parallel
    )


def build_webhook_app(settings: Settings, **options):
    """The webhook app with a local runtime that claims, and a render process that renders
    (what `dropreel serve` runs: renders never share the webhook's process)."""
    from infra.render_process import RenderProcess
    from triggers.webhook import create_app

    runtime = build_runtime(settings)
    renders = RenderProcess(settings, settings.workers)
    return create_app(settings, runtime, renders, closables=[renders], **options)
