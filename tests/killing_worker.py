"""A real dropreel worker process that SIGKILLs itself at a chosen step of a chosen job.

`python -m tests.killing_worker watch` runs `dropreel watch` (infra/cli/main.py) unchanged;
`python -m tests.killing_worker intake KEY...` feeds the webhook's intake an event per key,
every event twice, as a webhook sender that retries would. Before either starts, this
bootstrap wraps the storage that `infra.wiring` opens and the frame observer `watch` installs,
so that right after the step a job is planned to die at (`KILL_PLAN`, a JSON file
{job: step}) the process kills itself with SIGKILL: no `finally`, no flush, no goodbye. Each
job dies once across every process: the first to create `KILL_DIR/<job>` does it.
No hook in dropreel itself: everything here wraps what `infra.wiring` and `infra.cli.progress`
export.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from infra import wiring
from infra.cli import progress
from tests.crashes import STEPS, CrashingStorage, job_of

PLAN: dict[str, str] = json.loads(Path(os.environ["KILL_PLAN"]).read_text())
KILLS = Path(os.environ["KILL_DIR"])


def _die(job: str, step: str) -> None:
    """SIGKILL this process if `job` is planned to die at `step` and has not died yet."""
    if PLAN.get(job) != step:
        return
    # The record appears whole or not at all (written aside, then linked exclusively): another
    # thread of this process may SIGKILL it at any moment.
    draft = KILLS / f".{os.getpid()}-{threading.get_ident()}"
    draft.write_text(step)
    try:
        os.link(draft, KILLS / job.replace("/", "__"))
    except FileExistsError:
        return
    finally:
        draft.unlink()
    os.kill(os.getpid(), signal.SIGKILL)


class KillingStorage(CrashingStorage):
    """The real storage; after a write that matches a job's planned step, the process dies."""

    def __init__(self, inner) -> None:
        super().__init__(inner, PLAN)

    def _after(self, key: str, data) -> None:
        job = job_of(key)
        step = PLAN.get(job)
        if step in STEPS and STEPS[step](key, data if isinstance(data, bytes) else b""):
            _die(job, step)


def _install() -> None:
    open_storage = wiring.open_storage
    wiring.open_storage = lambda url, settings: KillingStorage(open_storage(url, settings))

    def on_frame(job, done: int, total: int) -> None:
        if done >= 2:
            _die(job.name, "mid-render")

    progress.FrameBars = lambda: on_frame  # `watch` installs this as its frame observer


def _intake(keys: list[str]) -> int:
    from config.settings import Settings
    from infra.local_dispatch import PoolDispatcher
    from triggers.events.model import ObjectEvent
    from triggers.intake import Intake, watch_location

    settings = Settings()
    rt = wiring.build_runtime(settings)
    rt.on_frame = progress.FrameBars()
    pool = PoolDispatcher(rt, settings.workers)
    intake = Intake(rt, pool)
    bucket, _ = watch_location(settings.watch_root)
    for _ in range(2):  # every event twice: duplicates are harmless
        for key in keys:
            try:
                intake.accept([ObjectEvent(bucket, key, True)])
            except Exception as err:  # the sender would retry; the next duplicate does
                print(f"intake: {key}: {err}", file=sys.stderr)
    intake.close()
    pool.close()
    return 0


if __name__ == "__main__":
    _install()
    if sys.argv[1] == "intake":
        sys.exit(_intake(sys.argv[2:]))
    from infra.cli.main import main

    sys.exit(main(["watch"]))
