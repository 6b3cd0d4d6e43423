"""`dropreel setup-notifications` against moto's server: what AWS would hold afterwards."""

from __future__ import annotations

import json

import boto3
import pytest

from infra.cli.main import main
from infra.storage.bucket_events import SetupError, r2_steps, setup_eventbridge, setup_sns


@pytest.fixture
def clients(moto_endpoint):
    def make(name: str):
        return boto3.client(name, endpoint_url=moto_endpoint, region_name="us-east-1")

    return make


def test_sns_setup_creates_topic_policy_subscription_and_rule(clients, s3_client, bucket):
    sns, sts = clients("sns"), clients("sts")
    other = {
        "Id": "someone-else",
        "TopicArn": sns.create_topic(Name=f"other-{bucket}")["TopicArn"],
        "Events": ["s3:ObjectRemoved:*"],
    }
    s3_client.put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration={"TopicConfigurations": [other]}
    )
    hook = "https://hooks.example.com/base"
    topic_name = f"dropreel-{bucket}"

    first = setup_sns(s3_client, sns, bucket, "inbox/", hook, topic_name, sts=sts)
    again = setup_sns(s3_client, sns, bucket, "inbox/", hook, topic_name, sts=sts)

    topic = first.arns["topic"]
    assert again.arns["topic"] == topic
    assert first.endpoint == "https://hooks.example.com/base/events/sns"

    config = s3_client.get_bucket_notification_configuration(Bucket=bucket)
    entries = config["TopicConfigurations"]
    ours = [e for e in entries if e["TopicArn"] == topic]
    assert len(ours) == 1, entries  # idempotent
    assert ours[0]["Events"] == ["s3:ObjectCreated:*"]
    assert ours[0]["Filter"]["Key"]["FilterRules"] == [{"Name": "prefix", "Value": "inbox/"}]
    assert any(e["Id"] == "someone-else" for e in entries)  # left alone

    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    # (moto accepts the SignatureVersion attribute but does not return it, so it is not read)
    policy = json.loads(attributes["Policy"])
    statements = [
        s for s in policy["Statement"] if s["Principal"] == {"Service": "s3.amazonaws.com"}
    ]
    assert len(statements) == 1
    assert statements[0]["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket}"
    assert statements[0]["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"

    subs = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subs] == [("https", first.endpoint)]
    assert f"DROPREEL_WEBHOOK_SNS_TOPIC_ARNS={topic}" in first.summary()


def test_eventbridge_setup(clients, s3_client, bucket):
    events, iam = clients("events"), clients("iam")
    result = setup_eventbridge(
        s3_client, events, iam, bucket, "inbox/", "https://hooks.example.com", "s3cr3t-value",
        name=f"dr-{bucket}",
    )  # fmt: skip
    # (moto stores EventBridgeConfiguration but does not render it back, so it is not read here)
    rule_name = f"dr-{bucket}-{bucket}"[:64]
    pattern = json.loads(events.describe_rule(Name=rule_name)["EventPattern"])
    assert pattern["detail-type"] == ["Object Created"]
    assert pattern["detail"] == {
        "bucket": {"name": [bucket]},
        "object": {"key": [{"prefix": "inbox/"}]},
    }
    (target,) = events.list_targets_by_rule(Rule=rule_name)["Targets"]
    assert target["Arn"] == result.arns["api_destination"]
    assert target["RoleArn"] == result.arns["role"]
    destination = events.describe_api_destination(Name=f"dr-{bucket}-webhook")
    assert destination["InvocationEndpoint"] == "https://hooks.example.com/events/eventbridge"
    connection = events.describe_connection(Name=f"dr-{bucket}-connection")
    assert connection["AuthParameters"]["ApiKeyAuthParameters"]["ApiKeyName"] == "X-Dropreel-Secret"
    assert "s3cr3t-value" not in result.summary()
    # running it again updates instead of failing
    setup_eventbridge(
        s3_client, events, iam, bucket, "inbox/", "https://hooks.example.com", "s3cr3t-value",
        name=f"dr-{bucket}",
    )  # fmt: skip


def test_eventbridge_needs_a_secret(clients, s3_client, bucket):
    with pytest.raises(SetupError, match="DROPREEL_WEBHOOK_EVENTBRIDGE_SECRET"):
        setup_eventbridge(
            s3_client, clients("events"), clients("iam"), bucket, "", "https://h.example", ""
        )


@pytest.mark.parametrize("url", ["http://hooks.example.com", "ftp://x", "not a url"])
def test_plain_http_only_on_loopback(clients, s3_client, bucket, url):
    with pytest.raises(SetupError):
        setup_sns(s3_client, clients("sns"), bucket, "inbox/", url)


def test_r2_steps_name_the_queue_rule_and_worker():
    text = r2_steps("media", "inbox/", "https://hooks.example.com")
    assert "wrangler queues create dropreel-events" in text
    assert (
        "wrangler r2 bucket notification create media --event-type object-create "
        "--queue dropreel-events --prefix 'inbox/'" in text
    )
    assert "wrangler secret put DROPREEL_R2_SECRET" in text
    assert "https://hooks.example.com/events/r2" in text


def test_cli_sns_against_moto(moto_endpoint, s3_client, bucket, monkeypatch, capsys):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("DROPREEL_REGION", "us-east-1")
    code = main(
        [
            "setup-notifications",
            f"s3://{bucket}/inbox/",
            "--webhook",
            "https://hooks.example.com",
            "--topic-name",
            f"cli-{bucket}",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"arn:aws:sns:us-east-1:123456789012:cli-{bucket}" in out
    config = s3_client.get_bucket_notification_configuration(Bucket=bucket)
    assert len(config["TopicConfigurations"]) == 1


def test_cli_r2_prints_steps(capsys):
    assert (
        main(["setup-notifications", "s3://media/in/", "--webhook", "https://h.example", "--r2"])
        == 0
    )
    assert "npx wrangler deploy" in capsys.readouterr().out
