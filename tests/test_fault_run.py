"""The fault run at scale, with real processes and real SIGKILLs.

100 jobs; three `dropreel watch` processes and a webhook intake process, all behind a proxy that
loses 5% of the replies of every kind after moto applied the request; workers SIGKILL
themselves (tests/killing_worker.py) mid-render, after the upload, after the lease turned final
and between the outcome's status and the notification, and are restarted; the intake gets every
event twice. Every version: one completed render, one done or failed marker, one Slack message
(the fake Slack, in this process, outlives the workers), and status.json agrees.

The JSON-lines notification log (appended per line) is kept too, and is at-least-once by design:
a worker killed, with its whole process, after notifying and before the marker leaves the
message to the outbox, and only Slack's notifier can look for a message before sending again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlparse

from infra.notify.fake_slack import FakeSlack
from infra.storage.s3 import S3Storage, make_client
from tests.crashes import STEPS, job_of
from tests.fault_proxy import FaultProxy
from tests.helpers import Notifications, status
from tests.index_chaos import IndexVandal
from tests.test_lost_replies import drop, settled

ROOT = Path(__file__).resolve().parents[1]
JOBS = 100
WATCHERS = 3
LEASE = 6.0
LOSE_EVERY = 20  # 5% of the replies of each kind
KILL_STEPS = ["mid-render", *sorted(STEPS)]
KILLS_PER_STEP = 6
DEADLINE = 420.0  # a hang guard, not a speed claim: ~150 s on 2 quiet cores, more under load


class Decisions(Counter):
    """Counts, as moto applied them, the leases that turned final: each is one run that
    completed (or failed) its version. A take-back keeps a final lease final and counts nothing;
    a version claimed again after its lease was deleted would count twice."""

    def __init__(self) -> None:
        super().__init__()
        self._final: dict[str, bool] = {}
        self.history: dict[str, list] = {}
        self._lock = threading.Lock()

    def __call__(self, method: str, path: str, body: bytes | None, status: int) -> None:
        key = unquote(urlparse(path).path).partition("/inbox/")[2]
        if method not in ("PUT", "DELETE") or not key.endswith(".lease") or status >= 300:
            return
        final = method == "PUT" and b'"final": {' in (body or b"")
        with self._lock:
            self.history.setdefault(job_of(key), []).append((method, final, (body or b"")[:300]))
            if final and not self._final.get(key):
                self[f"{job_of(key)} {json.loads(body)['final']['state']}"] += 1
            self._final[key] = final


def test_a_hundred_jobs_through_lost_replies_and_sigkills(moto_endpoint, bucket, tmp_path):
    truth = S3Storage(bucket, "inbox/", client=make_client(moto_endpoint, "us-east-1"))
    names = drop(truth, JOBS)
    # every 4th job dies once, at the steps in turn; the others meet only lost replies
    doomed = names[::4][: KILLS_PER_STEP * len(KILL_STEPS)]
    plan = {name: KILL_STEPS[i % len(KILL_STEPS)] for i, name in enumerate(doomed)}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    (tmp_path / "kills").mkdir()
    notes = Notifications(tmp_path / "notes.jsonl")
    decided = Decisions()

    with (
        FakeSlack() as slack,
        FaultProxy(moto_endpoint, every=LOSE_EVERY, observe=decided) as proxy,
    ):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DROPREEL_WATCH_ROOT": truth.url,
            "DROPREEL_ENDPOINT_URL": proxy.url,
            "DROPREEL_REGION": "us-east-1",
            "DROPREEL_SETTLE_SECONDS": "0",
            "DROPREEL_LEASE_SECONDS": str(LEASE),
            # A kill takes every claim its process holds (queued ones too), each an attempt: at
            # 8, a full-suite run once failed a job whose eight holders were all killed.
            "DROPREEL_MAX_ATTEMPTS": "20",
            "DROPREEL_POLL_SECONDS": "0.5",
            "DROPREEL_SWEEP_SECONDS": "2",  # ticks follow the active index, under a vandal
            "DROPREEL_WORKERS": "2",
            "DROPREEL_NOTIFIER": "slack",
            "DROPREEL_SLACK_BOT_TOKEN": slack.token,
            "DROPREEL_SLACK_CHANNEL": "C0DROPREEL",
            "DROPREEL_SLACK_BASE_URL": slack.base_url,
            "DROPREEL_NOTIFY_LOG": str(notes.path),
            "KILL_PLAN": str(tmp_path / "plan.json"),
            "KILL_DIR": str(tmp_path / "kills"),
        }
        events = [f"inbox/{name}.{ext}" for name in names for ext in ("png", "wav")]
        commands = [["watch"]] * WATCHERS + [["intake", *events]]
        logs = [open(tmp_path / f"worker{i}.log", "ab") for i in range(len(commands))]  # noqa: SIM115

        def start(i: int) -> subprocess.Popen:
            return subprocess.Popen(
                [sys.executable, "-m", "tests.killing_worker", *commands[i]],
                cwd=ROOT,
                env=env,
                stdout=logs[i],
                stderr=logs[i],
            )

        procs: list[subprocess.Popen | None] = [start(i) for i in range(len(commands))]
        restarts = 0
        started = time.monotonic()
        vandal = IndexVandal(truth, sorted({name.rpartition("/")[0] + "/" for name in names}))
        try:
            with vandal:
                while not settled(truth, names) and time.monotonic() - started < DEADLINE:
                    for i, proc in enumerate(procs):
                        if proc is None or proc.poll() is None:
                            continue
                        assert proc.returncode == -9 or commands[i][0] == "intake", (
                            f"worker {i} exited {proc.returncode}: see {tmp_path}/worker{i}.log"
                        )
                        if proc.returncode == -9:  # killed at its planned step: start a new one
                            procs[i] = start(i)
                            restarts += 1
                        else:
                            procs[i] = None  # the intake fed every event twice and finished
                    time.sleep(0.3)
        finally:
            for proc in procs:
                if proc is not None and proc.poll() is None:
                    proc.terminate()
            for proc in procs:
                if proc is not None:
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            for log in logs:
                log.close()
        seconds = round(time.monotonic() - started, 1)

    assert settled(truth, names), f"unfinished after {DEADLINE:.0f} s: see {tmp_path}"
    kills = {
        p.name.replace("__", "/"): p.read_text()
        for p in (tmp_path / "kills").iterdir()
        if not p.name.startswith(".")  # a draft left by a process killed while writing it
    }
    sent = Counter(
        m["metadata"]["event_payload"]["job"] for m in slack.messages if "thread_ts" not in m
    )
    logged = Counter(n["job"] for n in notes.read())
    listed = [o.key for o in truth.list().objects]
    figures = {
        "requests": sum(proxy.requests.values()),
        "faults (lost replies)": sum(proxy.lost.values()),
        "lost replies": dict(proxy.lost),
        "kills": dict(Counter(kills.values())),
        "restarts": restarts,
        "jobs": JOBS,
        "renders completed": sum(decided.values()),
        "Slack messages": sum(sent.values()),
        "resends (each looked in Slack first)": len(slack.calls("conversations.history")),
        "JSON-log lines": sum(logged.values()),
        "duplicates kept from Slack": sum(logged.values()) - sum(sent.values()),
        "seconds": seconds,
    }
    print("fault run:", json.dumps(figures))
    (tmp_path / "leases.json").write_text(json.dumps(decided.history, default=repr, indent=1))
    assert all(proxy.lost[m] for m in ("GET", "PUT", "DELETE")), figures  # every kind
    # A planned kill can miss: a process killed for another job takes its other threads with it,
    # and the step it dies at may then be done by a write that finds it done (412 on a marker).
    assert all(plan[job] == step for job, step in kills.items()), kills
    per_step = Counter(kills.values())
    assert all(per_step[step] >= KILLS_PER_STEP - 2 for step in KILL_STEPS), figures
    for name in names:
        folder, _, stem = name.rpartition("/")
        meta = f"{folder}/.dropreel/{stem}/"
        ends = [k.rpartition(".")[2] for k in listed if k.startswith(meta)]
        outcome = [e for e in ends if e in ("done", "failed")]
        assert outcome == ["done"], (name, ends)  # one marker; valid jobs end done
        assert decided[f"{name} done"] == 1, (
            name,
            decided[f"{name} done"],
            f"see {tmp_path}",
        )  # one completed render
        assert sent[name] == 1, (name, sent[name])  # one Slack message
        assert logged[name] >= 1, name  # the log: at least one line
        st = status(truth, meta + "status.json")
        assert st["state"] == "done" and st["notification"] == "sent", (name, st)
        assert f"{name}.mp4" in listed
    assert sum(decided.values()) == JOBS and sum(sent.values()) == JOBS, figures
