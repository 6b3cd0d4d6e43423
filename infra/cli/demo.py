"""`dropreel demo`: the whole product on one machine, no account, no network, no GPU.

Starts moto's S3 server on 127.0.0.1, makes a bucket, drops a portrait + voice pair, a portrait
+ script and a prompt.json into inbox/, runs the watcher until every MP4 exists, and says where
they are. The script job speaks with the configured speech engine (the CPU preview unless
DROPREEL_ENGINE_SPEECH names another whose weights are on disk).
Notifications go to a fake Slack server on 127.0.0.1 (printed at the end, as a person would read
them), or to real Slack when SLACK_BOT_TOKEN and DROPREEL_SLACK_CHANNEL are set.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from config.settings import Settings
from handlers.status import JobState
from infra.cli import samples
from infra.cli.progress import FrameBars
from infra.local_dispatch import PoolDispatcher
from infra.notify.fake_slack import FakeSlack
from infra.notify.notifiers import ConsoleNotifier, FanOutNotifier
from infra.notify.slack import bot_token, build_slack_notifier
from infra.storage import open_storage
from infra.storage.s3 import make_client
from infra.wiring import build_runtime
from triggers.poller import watch

BUCKET = "dropreel-demo"
DEMO_INPUTS = {
    "inbox/alice/alice.png": samples.portrait_png(),
    "inbox/alice/alice.wav": samples.voice_wav(seconds=4.0),
    "inbox/boat/prompt.json": samples.prompt_json(duration_seconds=3),
    "inbox/bob/bob.png": samples.portrait_png(seed=1),
    "inbox/bob/bob.script.txt": samples.SCRIPT.encode(),
}
OUTPUTS = ("inbox/alice/alice.mp4", "inbox/boat/prompt.mp4", "inbox/bob/bob.mp4")
SPEECH = ("inbox/bob/bob.speech.wav",)


class RecordingConsole(ConsoleNotifier):
    def __init__(self) -> None:
        super().__init__()
        self.events = []

    def notify(self, event) -> None:
        self.events.append(event)
        super().notify(event)


def run_demo(out_dir: str = "dropreel-demo", timeout: float = 300) -> int:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    for var, value in {
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(var, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    stop = threading.Event()
    env = Settings()
    real_slack = bool(bot_token(env) and env.slack_channel)
    fake_slack = None if real_slack else FakeSlack().start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        print(f"S3 server (moto) on {endpoint}, bucket s3://{BUCKET}/")
        client = make_client(endpoint, "us-east-1")
        client.create_bucket(Bucket=BUCKET)
        settings = Settings(
            watch_root=f"s3://{BUCKET}/inbox/",
            endpoint_url=endpoint,
            region="us-east-1",
            settle_seconds=1.0,
            poll_seconds=1.0,
            workers=2,
            notifier="slack",
            **(
                {}
                if fake_slack is None
                else {
                    "slack_bot_token": fake_slack.token,
                    "slack_channel": "#dropreel",
                    "slack_base_url": fake_slack.base_url,
                }
            ),
        )
        if fake_slack:
            print(f"Slack: a fake Slack Web API on {fake_slack.base_url} (set SLACK_BOT_TOKEN and")
            print("  DROPREEL_SLACK_CHANNEL to post to your real workspace instead)")
        else:
            print(f"Slack: posting to your workspace, channel {settings.slack_channel}")
        for key, body in DEMO_INPUTS.items():
            client.put_object(Bucket=BUCKET, Key=key, Body=body)
            print(f"dropped s3://{BUCKET}/{key}")
        notifier = RecordingConsole()
        rt = build_runtime(
            settings,
            storage=open_storage(settings.watch_root, settings, client),
            notifier=FanOutNotifier([notifier, build_slack_notifier(settings)]),
        )
        rt.on_frame = FrameBars(enabled=True)
        dispatcher = PoolDispatcher(rt, settings.workers)
        watcher = threading.Thread(target=watch, args=(rt, dispatcher, 1.0, stop), daemon=True)
        watcher.start()
        deadline = time.monotonic() + timeout
        while len(notifier.events) < len(OUTPUTS) and time.monotonic() < deadline:
            time.sleep(0.2)
        stop.set()
        watcher.join(timeout=10)
        dispatcher.close()
        if len(notifier.events) < len(OUTPUTS):
            print(f"demo: timed out after {timeout:.0f}s waiting for the videos")
            return 1
        failed = [e for e in notifier.events if e.state is not JobState.DONE]
        for event in failed:
            print(f"demo: {event.status.job} failed: {event.status.error}")
        if failed:
            return 1
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        print("\nresults:")
        for key in (*OUTPUTS, *SPEECH):
            local = out / key.replace("/", "_")
            client.download_file(BUCKET, key, str(local))
            print(f"  s3://{BUCKET}/{key}  (copied to {local})")
        if fake_slack:
            print("\nwhat Slack received (chat.postMessage + the poster via files_upload_v2):")
            for message in fake_slack.messages:
                print(
                    "\n"
                    + "\n".join("  │ " + line for line in fake_slack.render(message).splitlines())
                )
        print(f"\n{len(notifier.events)} notifications sent, every video rendered.")
        return 0
    finally:
        stop.set()
        server.stop()
        if fake_slack:
            fake_slack.stop()
