"""Signed callbacks through the real lifecycle on moto, to a receiver on 127.0.0.1 that verifies
every signature as docs/CALLBACKS.md says: the events a job sends, the event filter, prompt.json's
own URL, retries, and one delivery per event across a crash and the outbox's resend."""

from __future__ import annotations

import base64
import hmac
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from handlers.runtime import Runtime
from infra.notify.callbacks import CallbackSender, sign, verify
from infra.notify.notifiers import NullNotifier
from tests.callback_receiver import CallbackReceiver
from tests.crashes import STEPS, Crash, CrashingStorage
from tests.helpers import png, prompt, run_tick, status, wav

SECRET = "whsec-dropreel-test-secret"
LEASE = 2.0


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def receiver():
    with CallbackReceiver(SECRET) as server:
        yield server


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def runtime(make_settings, s3_storage, receiver, sleeps):
    def build(storage=None, **overrides) -> Runtime:
        values = {
            "callback_url": receiver.url,
            "callback_secret": SECRET,
            "slack_progress_seconds": 0.0,
            "lease_seconds": LEASE,
        }
        values.update(overrides)
        settings = make_settings(s3_storage, **values)
        sender = CallbackSender(SECRET if values["callback_secret"] else None, sleep=sleeps)
        return Runtime(storage or s3_storage, settings, NullNotifier(), callbacks=sender)

    return build


def test_a_job_calls_back_claimed_progress_and_done_signed(runtime, receiver, s3_storage):
    s3_storage.put("team/alice.png", png())
    s3_storage.put("team/alice.wav", wav(1.6))
    run_tick(runtime())

    got = receiver.deliveries
    assert all(d.verified and d.answered == 200 for d in got)
    assert [d.headers["x-dropreel-event"] for d in got] == [
        "claimed",
        "progress",
        "progress",
        "progress",
        "done",
    ]
    ids = [d.headers["x-dropreel-event-id"] for d in got]
    assert len(set(ids)) == 5 and ids == [d.body["id"] for d in got]
    assert all(d.headers["idempotency-key"] == d.body["id"] for d in got)
    assert ids[1].endswith("-progress-25") and ids[3].endswith("-progress-75")
    done = got[-1].body
    assert done["state"] == "done" and done["job"] == "team/alice"
    assert done["video_key"] == "team/alice.mp4" and done["video_url"].startswith("http")
    assert done["engine"] == "preview" and done["duration_seconds"] > 1
    st = status(s3_storage, "team/.dropreel/alice/status.json")
    assert st["callbacks"] == dict.fromkeys(ids, "delivered")
    everything = json.dumps(st) + "".join(d.raw.decode() + str(d.headers) for d in got)
    assert SECRET not in everything


def test_a_failed_job_says_what_and_whose_move(runtime, receiver, s3_storage):
    s3_storage.put("q/face.png", png())
    s3_storage.put("q/face.wav", b"RIFF nonsense")
    run_tick(runtime(callback_events=["failed"]))
    (failed,) = receiver.deliveries
    assert failed.verified and failed.body["event"] == "failed"
    assert "face.wav is not an audio file" in failed.body["error"]
    assert failed.body["fix_by"] == "user"


def test_prompt_json_sets_a_jobs_own_url_and_events(runtime, s3_storage, sleeps):
    with CallbackReceiver(SECRET) as own:
        s3_storage.put("p/prompt.json", prompt(callback_url=own.url, callback_events=["done"]))
        run_tick(runtime(callback_url=None))
        (done,) = own.deliveries
    assert done.verified and done.body["event"] == "done" and done.body["job"] == "p/prompt"
    st = status(s3_storage, "p/.dropreel/prompt/status.json")
    assert st["callback_url"] == own.url and st["callback_events"] == ["done"]


def test_the_operator_can_limit_which_hosts_a_prompt_json_may_call(runtime, receiver, s3_storage):
    s3_storage.put("a/prompt.json", prompt(callback_url=receiver.url))  # host 127.0.0.1
    s3_storage.put("b/prompt.json", prompt(callback_url="http://169.254.169.254/latest"))
    run_tick(runtime(callback_url=None, callback_hosts=["127.0.0.1"], callback_events=["done"]))
    (done,) = receiver.deliveries
    assert done.body["job"] == "a/prompt"
    (refused,) = status(s3_storage, "b/.dropreel/prompt/status.json")["callbacks"].values()
    assert refused.startswith("failed: prompt.json's callback_url names the host '169.254.169.254'")
    assert "DROPREEL_CALLBACK_HOSTS" in refused


def test_server_errors_are_retried_with_backoff_and_4xx_is_not(
    runtime, receiver, s3_storage, sleeps
):
    receiver.answers = [(503, {}), (429, {"Retry-After": "3"}), (200, {}), (400, {})]
    s3_storage.put("r/prompt.json", prompt())
    run_tick(runtime(callback_events=["claimed", "done"], slack_progress_seconds=3600))
    assert [d.answered for d in receiver.deliveries] == [503, 429, 200, 400]
    assert len({d.body["id"] for d in receiver.deliveries[:3]}) == 1  # one event, three tries
    assert sleeps == [1.0, 3.0]  # backoff, then the 429's Retry-After; no retry after the 400
    st = status(s3_storage, "r/.dropreel/prompt/status.json")
    claimed, done = st["callbacks"].values()
    assert claimed == "delivered"
    assert done.startswith("failed: CallbackError: http://127.0.0.1:")
    assert "refused the done callback with HTTP 400" in done
    assert "token" not in done  # the URL's path and query are never shown


def test_an_unreachable_receiver_gives_up_after_the_attempts(runtime, s3_storage, sleeps):
    s3_storage.put("r/prompt.json", prompt())
    run_tick(runtime(callback_url="http://127.0.0.1:9/nobody", callback_events=["done"]))
    (done,) = status(s3_storage, "r/.dropreel/prompt/status.json")["callbacks"].values()
    assert done.startswith("failed: CallbackError: the done callback to http://127.0.0.1:9 failed")
    assert sleeps == [1.0, 2.0, 4.0]


def test_a_resend_after_a_crash_does_not_call_back_twice(
    runtime, receiver, s3_storage, monkeypatch
):
    """The worker dies after it delivered and recorded the done callback, before the lease
    delete; the outbox resends the outcome but not the callback."""
    step = "after the notification was recorded"
    monkeypatch.setitem(
        STEPS, step, lambda key, body: key.endswith("status.json") and b'"sent"' in body
    )
    s3_storage.put("o/cy.png", png())
    s3_storage.put("o/cy.wav", wav())
    crashing = CrashingStorage(s3_storage, {"o/cy": step})
    with pytest.raises(Crash):
        run_tick(runtime(crashing, callback_events=["claimed", "done"]))
    assert [d.body["event"] for d in receiver.deliveries] == ["claimed", "done"]

    time.sleep(LEASE + 0.5)
    assert run_tick(runtime()).resent == ["o/cy"]
    assert [d.body["event"] for d in receiver.deliveries] == ["claimed", "done"]
    st = status(s3_storage, "o/.dropreel/cy/status.json")
    assert list(st["callbacks"].values()) == ["delivered", "delivered"]


def test_a_resend_delivers_the_callback_a_crash_kept_back(runtime, receiver, s3_storage):
    s3_storage.put("o/dx.png", png())
    s3_storage.put("o/dx.wav", wav())
    crashing = CrashingStorage(
        s3_storage, {"o/dx": "between the outcome's status and the notification"}
    )
    with pytest.raises(Crash):
        run_tick(runtime(crashing, callback_events=["done"]))
    assert receiver.deliveries == []
    time.sleep(LEASE + 0.5)
    assert run_tick(runtime()).resent == ["o/dx"]
    (done,) = receiver.deliveries
    assert done.verified and done.body["event"] == "done"


def test_signatures_are_what_the_docs_say():
    body = b'{"event":"done"}'
    header = sign("k", 1_800_000_000, body)
    mac = hmac.new(b"k", b"1800000000." + body, "sha256").hexdigest()
    assert header == f"t=1800000000,v1={mac}"
    assert verify("k", header, body, now=1_800_000_100)
    assert not verify("k", header, body + b" ", now=1_800_000_100)  # another body
    assert not verify("other", header, body, now=1_800_000_100)  # another secret
    assert not verify("k", header, body, now=1_800_000_000 + 301)  # a replay, too late
    assert not verify("k", "v1=abc", body)
    assert "whsec" not in repr(CallbackSender("whsec-x"))


DOCS = Path(__file__).resolve().parents[1] / "docs" / "CALLBACKS.md"


def doc_code(marker: str) -> str:
    """The code block right after `<!-- marker -->` in docs/CALLBACKS.md."""
    after = DOCS.read_text().split(f"<!-- {marker} -->", 1)[1]
    return after.split("```", 2)[1].split("\n", 1)[1]


@pytest.fixture
def delivered(runtime, receiver, s3_storage):
    """A `done` callback dropreel really sent, as the receiver got it."""
    s3_storage.put("d/prompt.json", prompt())
    run_tick(runtime(callback_events=["done"]))
    (done,) = receiver.deliveries
    return done


def test_the_documented_python_check_accepts_dropreel_and_refuses_forgeries(delivered):
    scope: dict = {}
    exec(doc_code("verify-python"), scope)
    check = scope["verify_dropreel"]
    header = delivered.headers["x-dropreel-signature"]
    assert check(SECRET, header, delivered.raw)
    assert not check(SECRET, header, delivered.raw.replace(b'"done"', b'"failed"'))
    assert not check("another-secret", header, delivered.raw)


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_the_documented_n8n_code_node_accepts_dropreel_and_refuses_forgeries(delivered, tmp_path):
    def run_code_node(raw: bytes) -> subprocess.CompletedProcess:
        harness = (
            f"const $input = {{ first: () => ({{ json: {{ headers: "
            f"{json.dumps(delivered.headers)} }}, binary: {{ data: {{ data: "
            f"{json.dumps(base64.b64encode(raw).decode())} }} }} }}) }};\n"
            f"const $env = {{ DROPREEL_CALLBACK_SECRET: {json.dumps(SECRET)} }};\n"
            f"const items = (() => {{\n{doc_code('verify-n8n')}\n}})();\n"
            "console.log(JSON.stringify(items));\n"
        )
        script = tmp_path / "code_node.js"
        script.write_text(harness)
        return subprocess.run(["node", str(script)], capture_output=True, text=True, timeout=60)

    good = run_code_node(delivered.raw)
    assert good.returncode == 0, good.stderr
    (item,) = json.loads(good.stdout)
    assert item["json"]["event"] == "done" and item["json"]["job"] == "d/prompt"
    forged = run_code_node(delivered.raw.replace(b'"done"', b'"failed"'))
    assert forged.returncode != 0 and "dropreel callback: bad signature" in forged.stderr
