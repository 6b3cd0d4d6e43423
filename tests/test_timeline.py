"""Slack as a job's timeline, through the real lifecycle on moto and the fake Slack server: one
thread per job across its versions, the claimed message edited in place as the job goes on,
the outcome in that same message, cost and GPU time, and whose move a failure is."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.notify import JobEvent
from handlers.runtime import Runtime
from handlers.status import JobStatus
from infra.notify.fake_slack import FakeSlack
from infra.notify.slack import build_message, build_slack_notifier
from tests.crashes import Crash
from tests.helpers import png, prompt, run_tick, status, wav

CHANNEL = "C0DROPREEL"
OTHER = "C0OTHERS"


@pytest.fixture
def fake():
    with FakeSlack(channels={CHANNEL: "dropreel", OTHER: "others"}) as server:
        yield server


@pytest.fixture
def runtime(fake, make_settings, s3_storage):
    def build(**overrides) -> Runtime:
        values = {
            "notifier": "slack",
            "slack_bot_token": fake.token,
            "slack_channel": CHANNEL,
            "slack_base_url": fake.base_url,
            "slack_progress_seconds": 0.0,
        }
        values.update(overrides)
        settings = make_settings(s3_storage, **values)
        notifier = build_slack_notifier(settings, sleep=lambda s: None)
        return Runtime(s3_storage, settings, notifier, gpu="L40S", usd_per_hour=1.95)

    return build


def calls(fake: FakeSlack) -> list[tuple[str, dict]]:
    """The Slack Web API calls in order, with their bodies (uploads as their method name)."""
    return [(r.method, r.body or {}) for r in fake.requests if r.method != "upload"]


def test_a_job_is_one_message_from_claim_to_video_edited_in_place(fake, runtime, s3_storage):
    s3_storage.put("team/alice.png", png())
    s3_storage.put("team/alice.wav", wav(1.6))
    rt = runtime()
    run_tick(rt)

    methods = [m for m, _ in calls(fake)]
    assert methods == [
        "chat.postMessage",  # claimed
        "chat.update",  # 25 %
        "chat.update",  # 50 %
        "chat.update",  # 75 %
        "chat.update",  # done
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    bodies = [body for _, body in calls(fake)]
    claimed = bodies[0]
    assert "thread_ts" not in claimed and claimed["channel"] == CHANNEL
    assert claimed["text"] == "⏳ alice has started"
    claimed_words = json.dumps(claimed["blocks"], ensure_ascii=False)
    assert "preview · profile default" in claimed_words
    assert "Estimate: a few seconds on CPU (preview engine) (an estimate, not a bill)" in (
        claimed_words
    )
    assert [b["text"] for b in bodies[1:4]] == [
        "⏳ alice is rendering: 25 %",
        "⏳ alice is rendering: 50 %",
        "⏳ alice is rendering: 75 %",
    ]
    (message,) = fake.messages  # one message in the channel, edited four times
    assert message["edits"] == 4 and all(b["ts"] == message["ts"] for b in bodies[1:5])
    shown = fake.render(message)
    assert "🎬 alice is ready" in shown
    assert "💰" in shown and "on L40S · ~$0.00" in shown and "(estimate)" in shown
    assert message["metadata"]["event_payload"]["state"] == "done"
    (upload,) = fake.uploads.values()
    assert upload.thread_ts == message["ts"]  # the poster in the job's thread
    st = status(s3_storage, "team/.dropreel/alice/status.json")
    assert st["slack"] == {"channel": CHANNEL, "ts": message["ts"], "thread_ts": None}
    assert st["notification"] == "sent" and st["gpu"] == "L40S"


def test_a_new_version_replies_in_the_jobs_thread(fake, runtime, s3_storage):
    s3_storage.put("team/bo.png", png())
    s3_storage.put("team/bo.wav", wav())
    rt = runtime(slack_progress_seconds=3600)  # no progress edit in so short a render
    run_tick(rt)
    (first,) = fake.messages
    s3_storage.put("team/bo.wav", wav(seed=7))  # replaced: a new version
    run_tick(rt)
    s3_storage.put("team/bo.png", png(seed=3))  # and another one
    run_tick(rt)

    top, *replies = fake.messages
    assert top is first and "thread_ts" not in top
    assert [m.get("thread_ts") for m in replies] == [first["ts"], first["ts"]]
    assert all("bo is ready" in fake.render(m) for m in fake.messages)
    assert [m for m, _ in calls(fake)].count("chat.update") == 3  # each outcome in place
    assert {u.thread_ts for u in fake.uploads.values()} == {first["ts"]}
    st = status(s3_storage, "team/.dropreel/bo/status.json")
    assert st["slack"] == {"channel": CHANNEL, "ts": replies[-1]["ts"], "thread_ts": first["ts"]}


def test_a_failure_lands_in_the_claimed_message_and_says_whose_move(fake, runtime, s3_storage):
    s3_storage.put("q/face.png", png())
    s3_storage.put("q/face.wav", b"RIFF nonsense")
    run_tick(runtime())
    (message,) = fake.messages
    assert [m for m, _ in calls(fake)] == ["chat.postMessage", "chat.update"]
    shown = fake.render(message)
    assert "❌ face failed" in shown
    assert "Engine: preview · profile default" in shown  # not "?": routing had chosen it
    assert "Fix or replace the file in that folder" in shown
    assert "💰" in shown


def test_a_job_that_fails_before_its_claim_message_gets_one_message(fake, runtime, s3_storage):
    s3_storage.put("p/prompt.json", b'{"prompt": "x", "fps": "fast"}')
    run_tick(runtime())
    (message,) = fake.messages
    assert [m for m, _ in calls(fake)] == ["chat.postMessage"]
    shown = fake.render(message)
    assert "Engine: not chosen: the job stopped before" in shown
    assert "fps" in shown and "Fix or replace the file" in shown


def test_prompt_json_can_send_a_jobs_messages_to_another_channel(fake, runtime, s3_storage):
    s3_storage.put("p/prompt.json", prompt(slack_channel=OTHER))
    run_tick(runtime(slack_progress_seconds=3600))
    (message,) = fake.messages
    assert message["channel"] == OTHER and "is ready" in fake.render(message)


def test_a_link_too_long_for_a_button_does_not_claim_an_expiry():
    status = JobStatus(
        state="done",
        job="c/x",
        kind="text_to_video",
        engine="preview",
        version="v1",
        output="c/x.mp4",
        video={"key": "c/x.mp4", "duration_seconds": 2.0},
    )
    event = JobEvent(status, "c/", video_location="s3://b/c/x.mp4", video_url="https://x/" * 400)
    _, blocks = build_message(event, 7 * 24 * 3600)
    words = json.dumps(blocks, ensure_ascii=False)
    assert '"actions"' not in words
    assert "expires" not in words
    assert "too long for a Slack button: open the file from the bucket" in words


def test_the_fake_checks_chat_update_and_threads_as_slack_does(fake):
    client = WebClient(token=fake.token, base_url=fake.base_url, retry_handlers=[])
    posted = client.chat_postMessage(channel=CHANNEL, text="first")
    someone = fake.post_as_someone_else(CHANNEL, "a person wrote this")
    for kwargs, error in (
        ({"channel": "#dropreel", "ts": posted["ts"]}, "channel_not_found"),  # an id only
        ({"channel": CHANNEL, "ts": "1.000001"}, "message_not_found"),
        ({"channel": OTHER, "ts": posted["ts"]}, "message_not_found"),
        ({"channel": CHANNEL, "ts": someone}, "cant_update_message"),
    ):
        with pytest.raises(SlackApiError) as refused:
            client.chat_update(text="edited", **kwargs)
        assert refused.value.response["error"] == error
    with pytest.raises(SlackApiError) as refused, pytest.warns(UserWarning):
        client.chat_update(channel=CHANNEL, ts=posted["ts"])
    assert refused.value.response["error"] == "no_text"
    with pytest.raises(SlackApiError) as refused:
        client.chat_postMessage(channel=OTHER, text="reply", thread_ts=posted["ts"])
    assert refused.value.response["error"] == "thread_not_found"
    client.chat_update(channel=CHANNEL, ts=posted["ts"], text="edited")
    reply = client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=posted["ts"])
    thread = client.conversations_replies(channel=CHANNEL, ts=posted["ts"])
    assert [m["text"] for m in thread["messages"]] == ["edited", "reply"]
    assert thread["messages"][1]["ts"] == reply["ts"]
    history = client.conversations_history(channel=CHANNEL)
    assert reply["ts"] not in [m["ts"] for m in history["messages"]]  # replies stay in threads


class DiesAfterPosting:
    """Slack's notifier in a worker that dies right after Slack took the claimed message, before
    status.json says where it is."""

    def __init__(self, notifier) -> None:
        self.notifier = notifier

    def update(self, event):
        self.notifier.update(event)
        raise Crash("died after posting the claimed message")

    def notify(self, event) -> None:
        self.notifier.notify(event)


def test_a_later_attempt_finds_the_message_a_dead_worker_posted(fake, runtime, s3_storage):
    s3_storage.put("o/ed.png", png())
    s3_storage.put("o/ed.wav", wav())
    rt = runtime(lease_seconds=2.0, slack_progress_seconds=3600)
    with pytest.raises(Crash):
        run_tick(replace(rt, notifier=DiesAfterPosting(rt.notifier)))
    (started,) = fake.messages
    assert status(s3_storage, "o/.dropreel/ed/status.json")["slack"] is None

    time.sleep(2.5)  # the lease expires; the next tick takes the job back (attempt 2)
    run_tick(rt)
    (message,) = fake.messages  # no second message: attempt 2 found it by its metadata
    assert message["ts"] == started["ts"] and "ed is ready" in fake.render(message)
    assert [m for m, _ in calls(fake)][:3] == [
        "chat.postMessage",
        "conversations.history",
        "chat.update",
    ]
    st = status(s3_storage, "o/.dropreel/ed/status.json")
    assert st["attempt"] == 2 and st["slack"]["ts"] == started["ts"]
