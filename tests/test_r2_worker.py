"""The shipped R2 forwarding Worker, run under Node against the webhook on loopback.

Node's fetch and WebCrypto are the same APIs the Workers runtime provides, so this checks that
the signature the Worker computes is the one the webhook accepts, and that messages are acked
or retried as documented. Skipped where Node is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from handlers.runtime import Runtime
from infra.cli import samples
from infra.notify.notifiers import NullNotifier
from tests.webhook_support import load_event, serve
from triggers.webhook import create_app

WORKER = Path(__file__).resolve().parents[1] / "infra" / "r2_worker" / "worker.js"
SECRET = "r2-worker-secret"

HARNESS = """
import worker from %(worker)s;
const outcomes = {};
const messages = %(messages)s.map((body, i) => ({
  id: `m${i}`,
  body,
  ack() { outcomes[this.id] = "ack"; },
  retry() { outcomes[this.id] = "retry"; },
}));
const batch = { messages, retryAll() { for (const m of messages) outcomes[m.id] = "retry"; } };
await worker.queue(batch, { DROPREEL_WEBHOOK_URL: %(url)s, DROPREEL_R2_SECRET: %(secret)s });
console.log(JSON.stringify(outcomes));
"""


class Recorder:
    def __init__(self) -> None:
        self.jobs: list[str] = []

    def dispatch(self, job, lease) -> None:
        self.jobs.append(job.name)


def run_worker(tmp_path: Path, url: str, secret: str, messages: list) -> dict:
    script = tmp_path / "harness.mjs"
    script.write_text(
        HARNESS
        % {
            "worker": json.dumps(WORKER.as_uri()),
            "messages": json.dumps(messages),
            "url": json.dumps(url),
            "secret": json.dumps(secret),
        }
    )
    done = subprocess.run(
        ["node", str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_worker_signs_what_the_webhook_accepts(tmp_path, s3_storage, make_settings, bucket):
    s3_storage.put("r2 job/café.png", samples.portrait_png(64, 64))
    s3_storage.put("r2 job/café.wav", samples.voice_wav(seconds=0.6))
    settings = make_settings(s3_storage, webhook_r2_secret=SECRET)
    recorder = Recorder()
    rt = Runtime(storage=s3_storage, settings=settings, notifier=NullNotifier())
    good = load_event("r2_put_object.json", bucket=bucket)
    good["object"]["key"] = "inbox/r2 job/café.wav"
    not_an_event = {"hello": "world"}
    with serve(create_app(settings, rt, recorder)) as base_url:
        url = base_url + "/events/r2"
        outcomes = run_worker(tmp_path, url, SECRET, [good, not_an_event])
        assert outcomes == {"m0": "ack", "m1": "ack"}  # the 400 is acked: it can never succeed
        assert recorder.jobs == ["r2 job/café"]
        wrong = run_worker(tmp_path, url, "not-the-secret", [good])
        assert wrong == {"m0": "retry"}
        unreachable = run_worker(tmp_path, "http://127.0.0.1:9/events/r2", SECRET, [good])
        assert unreachable == {"m0": "retry"}
