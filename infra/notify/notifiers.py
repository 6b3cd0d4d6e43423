"""Notifiers: console (default), a JSON-lines log, and fan-out to several."""

from __future__ import annotations

import json
import logging
import sys
import threading
from pathlib import Path

from handlers.errors import first_line
from handlers.notify import JobEvent, Notifier
from handlers.status import SlackPlace

log = logging.getLogger(__name__)


class ConsoleNotifier:
    """Prints one line per finished or failed job."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout

    def notify(self, event: JobEvent) -> None:
        print(f"[dropreel] {event.summary()}", file=self.stream, flush=True)


class JsonLinesNotifier:
    """Appends each event as one JSON line; safe across threads and processes (O_APPEND)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def notify(self, event: JobEvent) -> None:
        line = json.dumps(event.to_dict(), ensure_ascii=False) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line)


class FanOutNotifier:
    """Sends to each notifier in turn; one failing does not stop the others. A running job's
    updates go to those that show one (Slack); the first place one returns is kept."""

    def __init__(self, notifiers: list[Notifier]) -> None:
        self.notifiers = notifiers

    def update(self, event: JobEvent) -> SlackPlace | None:
        place = None
        for notifier in self.notifiers:
            update = getattr(notifier, "update", None)
            if update is None:
                continue
            try:
                place = place or update(event)
            except Exception as err:  # one notifier's trouble never silences another
                log.warning("%s update failed: %s", type(notifier).__name__, first_line(err))
        return place

    def notify(self, event: JobEvent) -> None:
        errors = []
        for notifier in self.notifiers:
            try:
                notifier.notify(event)
            except Exception as err:
                errors.append(f"{type(notifier).__name__}: {err}")
        if errors:
            raise RuntimeError("; ".join(errors))


class NullNotifier:
    def notify(self, event: JobEvent) -> None:
        """Tells nobody."""
