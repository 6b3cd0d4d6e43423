"""Slack messages, checked on what a fake Slack Web API on 127.0.0.1 received from slack-sdk."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest

from handlers.notify import JobEvent
from handlers.runtime import Runtime
from handlers.status import JobStatus
from infra.local_dispatch import InlineDispatcher
from infra.notify.fake_slack import FakeSlack
from infra.notify.slack import SlackNotificationError, build_slack_notifier
from infra.storage.s3 import S3Storage
from tests.bad_inputs import good_png, good_wav
from tests.helpers import Outcomes
from triggers.poller import tick


@pytest.fixture
def fake():
    with FakeSlack() as server:
        yield server


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps():
    return Sleeps()


@pytest.fixture
def slack_settings(fake, make_settings):
    def build(storage=None, **overrides):
        values = {
            "notifier": "slack",
            "slack_bot_token": fake.token,
            "slack_channel": "#dropreel",
            "slack_base_url": fake.base_url,
        }
        values.update(overrides)
        return make_settings(storage, **values)

    return build


def _run(s3_client, bucket, settings_for, sleeps, files, **overrides):
    storage = S3Storage(bucket, "inbox/", client=s3_client)
    settings = settings_for(storage, **overrides)
    rt = Runtime(storage, settings, build_slack_notifier(settings, sleep=sleeps))
    for key, body in files.items():
        s3_client.put_object(Bucket=bucket, Key=f"inbox/{key}", Body=body)
    results = Outcomes()
    dispatcher = InlineDispatcher(rt, results)
    tick(rt, dispatcher)
    return storage, results


def _texts(message) -> str:
    """Every string a person can read in a message's blocks."""
    out = []

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "url", "image_url", "alt_text") and isinstance(value, str):
                    out.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message["blocks"])
    return "\n".join(out)


def test_finished_job_posts_blocks_and_poster_in_thread(
    fake, s3_client, bucket, slack_settings, sleeps
):
    storage, results = _run(
        s3_client,
        bucket,
        slack_settings,
        sleeps,
        {"team/alice.png": good_png(), "team/alice.wav": good_wav()},
        link_expiry_seconds=3 * 24 * 3600,
    )
    assert results == {"team/alice": "done"}
    methods = [r.method for r in fake.requests]
    assert methods == [
        "chat.postMessage",  # claimed: the job's thread starts (tests/test_timeline.py)
        "chat.update",  # the outcome, in the same message
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    post = fake.calls("chat.postMessage")[0]
    assert post.authorization == f"Bearer {fake.token}"
    assert post.content_type.startswith("application/json")
    (message,) = fake.messages
    assert message["channel"] == "C0DROPREEL"
    assert message["text"].startswith("🎬 alice is ready (preview): 1.5 s video")
    readable = _texts(message)
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "🎬 alice is ready"},
    }
    for words in (
        "*Job*\nalice",
        f"*Folder*\n`s3://{bucket}/inbox/team/`",
        "*Kind*\nTalking head (image + audio)",
        "*Engine*\npreview · profile default",
        "*Video*\n1.5 s · ",
        "25 fps",
        "*Preview render*",
        "▶ Open the MP4",
        f"Saved as `s3://{bucket}/inbox/team/alice.mp4`",
        "The link expires in 3 days",
        "render ",
        "*total ",
    ):
        assert words in readable, words
    button = message["blocks"][
        next(i for i, b in enumerate(message["blocks"]) if b["type"] == "actions")
    ]
    url = button["elements"][0]["url"]
    assert url.split("?")[0].endswith(f"/{bucket}/inbox/team/alice.mp4")
    query = parse_qs(urlparse(url).query)  # SigV4 query auth: lifetime in seconds
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert int(query["X-Amz-Expires"][0]) == 3 * 24 * 3600
    poster = storage.get("team/.dropreel/alice/poster.jpg")
    ask = fake.calls("files.getUploadURLExternal")[0]
    assert ask.content_type == "application/x-www-form-urlencoded"
    assert ask.body["filename"] == "alice.jpg" and int(ask.body["length"]) == len(poster)
    (upload,) = fake.uploads.values()
    assert upload.data == poster and poster[:3] == b"\xff\xd8\xff"
    assert upload.channel == "C0DROPREEL" and upload.thread_ts == message["ts"]
    status = json.loads(storage.get("team/.dropreel/alice/status.json"))
    assert status["notification"] == "sent"
    assert fake.token not in json.dumps(status)
    assert sleeps == []


def test_failed_job_says_what_and_where(fake, s3_client, bucket, slack_settings, sleeps):
    _, results = _run(
        s3_client,
        bucket,
        slack_settings,
        sleeps,
        {"q/face.png": good_png(), "q/voice.wav": b"RIFF nonsense"},
    )
    assert results == {"q/face": "failed"}
    (message,) = fake.messages
    readable = _texts(message)
    assert message["blocks"][0]["text"]["text"] == "❌ face failed"
    assert "*What went wrong*\nvoice.wav is not an audio file" in readable
    assert f"• `s3://{bucket}/inbox/q/voice.wav`" in readable
    assert f"• `s3://{bucket}/inbox/q/face.png`" in readable
    assert "*Attempts*\n1" in readable
    assert fake.uploads == {}


def _event(state: str = "done", error: str | None = None, **overrides) -> JobEvent:
    status = JobStatus(
        state=state,
        job="clips/<!channel> & co",
        kind="text_to_video",
        engine="preview",
        version="v1",
        output="clips/x.mp4",
        video={"key": "clips/x.mp4", "duration_seconds": 2.0},
        timings={"render": 1.25, "upload": 0.05},
        error=error,
    )
    values = {
        "folder": "clips/",
        "video_location": "s3://b/clips/x.mp4",
        "video_url": "http://example.invalid/x.mp4?sig=1",
    }
    values.update(overrides)
    return JobEvent(status, **values)


def _notifier(fake, make_settings, sleeps, **overrides):
    values = {
        "notifier": "slack",
        "slack_bot_token": fake.token,
        "slack_channel": "C0DROPREEL",
        "slack_base_url": fake.base_url,
    }
    values.update(overrides)
    return build_slack_notifier(make_settings(None, **values), sleep=sleeps)


def test_user_text_cannot_ping_or_link(fake, make_settings, sleeps):
    _notifier(fake, make_settings, sleeps).notify(_event())
    (message,) = fake.messages
    mrkdwn = _texts({"blocks": message["blocks"][1:]})  # blocks[0] is plain_text: never parsed
    assert "&lt;!channel&gt; &amp; co" in mrkdwn
    assert "<!channel>" not in mrkdwn and "<!channel>" not in message["text"]


def test_rate_limits_are_waited_out(fake, make_settings, sleeps):
    fake.rate_limit("chat.postMessage", times=2, retry_after=3)
    _notifier(fake, make_settings, sleeps).notify(_event())
    assert sleeps == [3.0, 3.0]
    assert len(fake.calls("chat.postMessage")) == 3
    assert len(fake.messages) == 1


def test_server_errors_are_retried_with_backoff(fake, make_settings, sleeps):
    fake.fail("chat.postMessage", times=2, status=503, error="service_unavailable")
    _notifier(fake, make_settings, sleeps).notify(_event())
    assert sleeps == [1.0, 2.0]
    assert len(fake.messages) == 1


def test_upload_steps_are_retried_too(fake, make_settings, sleeps):
    fake.rate_limit("files.completeUploadExternal", retry_after=2)
    _notifier(fake, make_settings, sleeps).notify(_event(poster_jpeg=b"\xff\xd8\xff" + b"0" * 500))
    assert sleeps == [2.0]
    assert len(fake.messages) == 1
    assert [u.thread_ts for u in fake.uploads.values() if u.title] == [fake.messages[0]["ts"]]


def test_persistent_errors_give_up_and_are_recorded(
    fake, s3_client, bucket, slack_settings, sleeps
):
    fake.fail("chat.postMessage", times=10, status=500)
    storage, results = _run(
        s3_client,
        bucket,
        slack_settings,
        sleeps,
        {"p/a.png": good_png(), "p/a.wav": good_wav()},
        slack_attempts=3,
    )
    assert results == {"p/a": "done"}  # Slack trouble never fails the job
    status = json.loads(storage.get("p/.dropreel/a/status.json"))
    assert status["state"] == "done"
    assert status["notification"].startswith(
        "failed: SlackNotificationError: Slack chat.postMessage failed 3 times"
    )
    assert sleeps == [1.0, 2.0]
    assert fake.messages == []
    again = tick(Runtime(storage, slack_settings(storage), None), InlineDispatcher(None))
    assert not again.claimed  # and it is not rendered again


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        ({"slack_bot_token": "xoxb-wrong-secret"}, "invalid_auth: the bot token is not valid"),
        ({"slack_channel": "#nowhere"}, "channel_not_found: the channel does not exist"),
    ],
)
def test_unfixable_errors_are_not_retried(fake, make_settings, sleeps, overrides, words):
    notifier = _notifier(fake, make_settings, sleeps, **overrides)
    with pytest.raises(SlackNotificationError, match=words) as caught:
        notifier.notify(_event())
    assert sleeps == [] and len(fake.calls("chat.postMessage")) == 1
    assert "wrong-secret" not in str(caught.value) and fake.token not in str(caught.value)


def test_too_much_rate_limiting_gives_up(fake, make_settings, sleeps):
    fake.rate_limit("chat.postMessage", times=5, retry_after=40)
    notifier = _notifier(fake, make_settings, sleeps, slack_max_wait_seconds=100)
    with pytest.raises(SlackNotificationError, match="kept rate-limiting"):
        notifier.notify(_event())
    assert sleeps == [40.0, 40.0]


def test_incoming_webhook_alternative(fake, make_settings, sleeps):
    fake.rate_limit("incoming-webhook", retry_after=5)
    settings = make_settings(None, notifier="slack", slack_webhook_url=fake.webhook_url)
    build_slack_notifier(settings, sleep=sleeps).notify(
        _event(state="failed", error="x.png is empty")
    )
    assert sleeps == [5.0]
    (post,) = fake.webhook_posts
    assert post["blocks"][0]["text"]["text"] == "❌ <!channel> & co failed"  # plain_text: inert
    assert "x.png is empty" in _texts(post)


def test_public_bucket_shows_poster_inline_and_permanent_link(fake, make_settings, sleeps):
    notifier = _notifier(
        fake, make_settings, sleeps, public_base_url="https://cdn.example.com/inbox"
    )
    notifier.notify(_event(poster_key="clips/.dropreel/x/poster.jpg", poster_jpeg=b"jpeg"))
    (message,) = fake.messages
    image = [b for b in message["blocks"] if b["type"] == "image"]
    assert image[0]["image_url"] == "https://cdn.example.com/inbox/clips/.dropreel/x/poster.jpg"
    assert "https://cdn.example.com/inbox/clips/x.mp4" in _texts(message)
    assert "does not expire" in _texts(message)
    assert fake.uploads == {}


def test_settings_without_token_or_webhook_explain_what_to_set(make_settings, monkeypatch):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    with pytest.raises(ValueError, match="SLACK_BOT_TOKEN and DROPREEL_SLACK_CHANNEL"):
        build_slack_notifier(make_settings(None, notifier="slack"))


def test_demo_prints_the_message_slack_received(tmp_path, capsys, monkeypatch):
    from infra.cli.demo import run_demo

    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    assert run_demo(out_dir=str(tmp_path / "out"), timeout=120) == 0
    out = capsys.readouterr().out
    assert "a fake Slack Web API on http://127.0.0.1:" in out
    assert "what Slack received" in out
    assert "│ 🎬 alice is ready" in out and "│ 🎬 prompt is ready" in out
    assert "Kind: Talking head (image + audio)" in out
    assert "↳ in thread: alice.jpg" in out
