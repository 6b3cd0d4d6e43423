"""Vandalise the active index while a run goes on: delete it, or fill it with garbage and
stale entries. The index is a schedule only, so every guarantee must hold regardless; the
sweep puts it back in order."""

from __future__ import annotations

import itertools
import threading

from handlers.layout import INDEX_DIR

GARBAGE = [
    INDEX_DIR + "active/not-an-entry",
    INDEX_DIR + "active/%2E%2E%2Fescape%2F@1",  # an unsafe folder, due long ago
    INDEX_DIR + "active/nowhere%2F@1",  # a folder that does not exist, due long ago
    INDEX_DIR + "swept",  # a sweep marker rewritten by a stranger
]


class IndexVandal:
    """Every `every` seconds: delete the whole index, then (next time) add garbage entries and
    a stale entry, due in the year 5000, for each folder in `folders`."""

    def __init__(self, storage, folders: list[str], every: float = 0.7) -> None:
        self.storage = storage
        self.folders = folders
        self.every = every
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="index-vandal", daemon=True)

    def __enter__(self) -> IndexVandal:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        for round_ in itertools.count():
            if self._stop.wait(self.every):
                return
            try:
                if round_ % 2 == 0:
                    for obj in self.storage.list(INDEX_DIR).objects:
                        self.storage.delete(obj.key)
                else:
                    for key in GARBAGE:
                        self.storage.put(key, b"garbage")
                    for folder in self.folders:
                        stale = folder.replace("/", "%2F")
                        self.storage.put(f"{INDEX_DIR}active/{stale}@95617584000", b"")
            except Exception:  # the store may be busy; vandals try again
                continue
            self.rounds += 1
