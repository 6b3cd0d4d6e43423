"""Crashes of a worker at chosen steps, simulated in-process.

`Crash` is a BaseException: no `except Exception` in dropreel catches it, so the run stops dead at
that point, as under SIGKILL: nothing after it runs, and its lease heartbeat stops with it (the
keeper is stopped on the way out; `finally` blocks run, but none of dropreel's write anything).
`CrashingStorage` wraps a storage and raises `Crash` right *after* a write whose key (and body)
match a step, once per job: the write has landed, the worker is gone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class Crash(BaseException):
    """The worker died here (SIGKILL-like): nothing after this point runs."""


def job_of(key: str) -> str:
    """'f/.dropreel/stem/v.done' or 'f/stem.mp4' -> 'f/stem'."""
    if "/.dropreel/" in f"/{key}":
        folder, _, rest = key.rpartition(".dropreel/")
        return folder + rest.partition("/")[0]
    return key.rpartition(".")[0]


# steps: name -> (which write, predicate on (key, body))
STEPS: dict[str, Callable[[str, bytes], bool]] = {
    "after upload": lambda key, body: key.endswith(".mp4"),
    "after the lease turned final": lambda key, body: (
        key.endswith(".lease") and b'"final": {' in body
    ),
    "between the outcome's status and the notification": lambda key, body: (
        key.endswith("status.json")
        and (b'"state": "done"' in body or b'"state": "failed"' in body)
        and b'"notification": "sent"' not in body
    ),
}


class CrashingStorage:
    """A storage whose writes crash the writer once per job, at the step `plan[job]` names."""

    def __init__(self, inner, plan: dict[str, str]) -> None:
        self.inner = inner
        self.plan = plan  # job name -> step name (shared by every worker)
        self.crashed: dict[str, str] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def _after(self, key: str, body: bytes | object) -> None:
        job = job_of(key)
        step = self.plan.get(job)
        if step not in STEPS or not STEPS[step](key, body if isinstance(body, bytes) else b""):
            return
        with self._lock:
            if job in self.crashed:
                return
            self.crashed[job] = step
        raise Crash(f"{job}: {step}")

    def put(self, key, data, content_type=None):
        etag = self.inner.put(key, data, content_type)
        self._after(key, data)
        return etag

    def put_if_absent(self, key, data, content_type=None):
        etag = self.inner.put_if_absent(key, data, content_type)
        self._after(key, data)
        return etag

    def put_if_match(self, key, data, etag, content_type=None):
        new = self.inner.put_if_match(key, data, etag, content_type)
        self._after(key, data)
        return new


def crash_mid_render(plan: dict[str, str], crashed: dict[str, str], lock: threading.Lock):
    """A `Runtime.on_frame` observer that crashes planned jobs at their second frame, once."""

    def on_frame(job, done: int, total: int) -> None:
        if plan.get(job.name) != "mid-render" or done < 2:
            return
        with lock:
            if job.name in crashed:
                return
            crashed[job.name] = "mid-render"
        raise Crash(f"{job.name}: mid-render")

    return on_frame
