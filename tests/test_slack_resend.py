"""A message the outbox sends again reaches Slack once: each message carries its job version in
Slack message metadata, and a resend first looks for it in the channel's recent history."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.runtime import Runtime
from infra.notify.fake_slack import FakeSlack
from infra.notify.slack import build_slack_notifier
from tests.crashes import Crash, CrashingStorage
from tests.helpers import open_leases, png, run_tick, status, wav
from tests.test_slack import _event

LEASE = 2.0
CHANNEL = "C0DROPREEL"


@pytest.fixture
def fake():
    with FakeSlack() as server:
        yield server


@pytest.fixture
def settings(fake, make_settings, s3_storage):
    return make_settings(
        s3_storage,
        lease_seconds=LEASE,
        notifier="slack",
        slack_bot_token=fake.token,
        slack_channel=CHANNEL,
        slack_base_url=fake.base_url,
    )


class DiesAfterSending:
    """A notifier whose worker dies right after Slack accepted the message, before the lease
    delete records it as sent."""

    def __init__(self, notifier) -> None:
        self.notifier = notifier

    def notify(self, event) -> None:
        self.notifier.notify(event)
        raise Crash("died after Slack accepted the message")


def top_level(fake: FakeSlack) -> list[dict]:
    return [m for m in fake.messages if "thread_ts" not in m]


def test_a_worker_dead_after_slack_took_the_message_is_not_announced_twice(
    fake, s3_storage, settings
):
    storage = s3_storage
    storage.put("o/bo.png", png())
    storage.put("o/bo.wav", wav())
    slack = build_slack_notifier(settings, sleep=lambda s: None)
    with pytest.raises(Crash):
        run_tick(Runtime(storage, settings, DiesAfterSending(slack)))
    assert len(top_level(fake)) == 1
    assert fake.calls("conversations.history") == []  # a first send never looks

    time.sleep(LEASE + 0.5)
    report = run_tick(Runtime(storage, settings, slack))
    assert report.resent == ["o/bo"]
    (message,) = top_level(fake)  # still one message in the channel
    assert "bo is ready" in fake.render(message)
    assert message["metadata"]["event_payload"]["job"] == "o/bo"
    (looked,) = fake.calls("conversations.history")
    assert looked.body["channel"] == CHANNEL and looked.body["include_all_metadata"] in (
        True,
        "1",
        "true",
    )
    assert float(looked.body["oldest"]) > time.time() - 3600  # since the outcome was decided
    st = status(storage, "o/.dropreel/bo/status.json")
    assert st["state"] == "done" and st["notification"] == "sent"
    assert open_leases(o.key for o in storage.list().objects) == []
    assert run_tick(Runtime(storage, settings, slack)).resent == []
    assert len(top_level(fake)) == 1


def test_a_worker_dead_before_slack_got_the_message_sends_it_once(fake, s3_storage, settings):
    storage = s3_storage
    storage.put("o/cy.png", png())
    storage.put("o/cy.wav", wav())
    slack = build_slack_notifier(settings, sleep=lambda s: None)
    crashing = CrashingStorage(
        storage, {"o/cy": "between the outcome's status and the notification"}
    )
    with pytest.raises(Crash):
        run_tick(Runtime(crashing, settings, slack))
    (started,) = fake.messages  # the job's claimed message, not its outcome
    assert "cy has started" in fake.render(started)

    time.sleep(LEASE + 0.5)
    assert run_tick(Runtime(storage, settings, slack)).resent == ["o/cy"]
    (message,) = top_level(fake)  # the outcome is written into that same message
    assert message["ts"] == started["ts"] and "cy is ready" in fake.render(message)
    assert message["metadata"] == {
        "event_type": "dropreel_job",
        "event_payload": {
            "job": "o/cy",
            "version": message["metadata"]["event_payload"]["version"],
            "state": "done",
        },
    }
    assert fake.calls("conversations.history") == []  # an edit is never a repeat: no lookup


@pytest.mark.parametrize(
    "channel, fault",
    [(CHANNEL, "missing_scope"), ("#dropreel", None)],  # no channels:history; a channel name
)
def test_a_resend_that_cannot_look_sends_anyway(fake, make_settings, channel, fault):
    settings = make_settings(
        None,
        notifier="slack",
        slack_bot_token=fake.token,
        slack_channel=channel,
        slack_base_url=fake.base_url,
    )
    slack = build_slack_notifier(settings, sleep=lambda s: None)
    event = _event()
    slack.notify(event)
    if fault:
        fake.fail("conversations.history", status=200, error=fault)
    slack.notify(replace(event, resend_since=event.status.updated_at))
    assert len(top_level(fake)) == 2  # a duplicate beats a lost message
    assert fake.calls("conversations.history")


def test_the_fake_checks_metadata_and_history_as_slack_does(fake):
    client = WebClient(token=fake.token, base_url=fake.base_url, retry_handlers=[])
    for metadata, error in [
        ("not json", "invalid_metadata_format"),
        ({"event_payload": {}}, "invalid_metadata_schema"),
        ({"event_type": "x", "event_payload": "flat"}, "invalid_metadata_schema"),
    ]:
        with pytest.raises(SlackApiError) as err:
            client.chat_postMessage(channel=CHANNEL, text="hi", metadata=metadata)
        assert err.value.response["error"] == error
    first = client.chat_postMessage(
        channel=CHANNEL, text="one", metadata={"event_type": "t", "event_payload": {"n": 1}}
    )
    for n in (2, 3):
        client.chat_postMessage(channel=CHANNEL, text=str(n))

    page = client.conversations_history(channel=CHANNEL, limit=2)
    assert [m["text"] for m in page["messages"]] == ["3", "2"]  # newest first
    assert page["has_more"]
    hidden = client.conversations_history(channel=CHANNEL)["messages"]
    assert len(hidden) == 3 and not [m for m in hidden if "metadata" in m]  # unless asked for
    cursor = page["response_metadata"]["next_cursor"]
    rest = client.conversations_history(
        channel=CHANNEL, limit=2, cursor=cursor, include_all_metadata=True
    )
    assert [m["metadata"]["event_payload"] for m in rest["messages"]] == [{"n": 1}]
    assert not rest["has_more"]
    newer = client.conversations_history(channel=CHANNEL, oldest=first["ts"])
    assert [m["text"] for m in newer["messages"]] == ["3", "2"]  # `oldest` is exclusive
    with pytest.raises(SlackApiError) as err:
        client.conversations_history(channel="#dropreel")
    assert err.value.response["error"] == "channel_not_found"  # history takes an id, not a name
