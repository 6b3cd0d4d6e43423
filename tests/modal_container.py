"""Run as `python -m tests.modal_container` in an environment holding only what a Modal
container gets (image env, shipped settings, the Secrets' keys): import the deployed app, then
drive its webhook, its poller and an engine class the way Modal would.

Two stand-ins, for what a container reaches but a test cannot: SNS's certificate host and
subscribe URL (a signer made here signs the envelopes), and Modal's `.spawn()` (the tickets
are recorded, then run through the engine class's `.local()`). Prints one JSON summary line.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from fastapi.testclient import TestClient

from tests.webhook_support import SnsSigner, s3_record


def sns_envelope(kind: str, topic: str, **fields: Any) -> dict[str, Any]:
    return {
        "Type": kind,
        "MessageId": f"m-{kind}",
        "TopicArn": topic,
        "Timestamp": "",
        **fields,
    }


def main(bucket: str, webhook_key: str, prompt_folder: str) -> dict[str, Any]:
    import triggers.sns_signature
    import triggers.webhook
    from config.settings import Settings
    from infra.modal import runtime as modal_runtime

    signer = SnsSigner()
    confirmed: list[str] = []
    tickets: list[dict[str, Any]] = []
    triggers.sns_signature.fetch_certificate_https = signer.fetch
    triggers.webhook.confirm_subscription_https = confirmed.append
    modal_runtime.launcher = lambda classes, mode: lambda engine, ticket: tickets.append(ticket)

    import infra.modal.app as deployed

    settings = Settings()
    topic = settings.webhook_sns_topic_arns[-1]
    out: dict[str, Any] = {"topics": settings.webhook_sns_topic_arns}
    with TestClient(deployed.webhook.local()) as client:
        subscribe = sns_envelope(
            "SubscriptionConfirmation",
            topic,
            Message="You have chosen to subscribe to the topic.",
            SubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&T=1",
            Token="token-1",
        )
        answer = client.post(
            "/events/sns",
            json=signer.sign(subscribe),
            headers={"x-amz-sns-message-type": "SubscriptionConfirmation"},
        )
        out["confirmation"] = [answer.status_code, confirmed]
        event = {"Records": [s3_record(bucket, webhook_key)]}
        notify = sns_envelope(
            "Notification",
            topic,
            Message=json.dumps(event),
            UnsubscribeURL="https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&x=1",
        )
        answer = client.post(
            "/events/sns",
            json=signer.sign(notify),
            headers={"x-amz-sns-message-type": "Notification"},
        )
        out["notification"] = answer.status_code
    out["tick"] = deployed.poll.local()
    out["rendered"] = {}
    for ticket in tickets:
        engine = deployed.ENGINE_CLASSES[ticket["engine"]]()
        out["rendered"][ticket["folder"]] = engine.run.local(ticket)
    out["tickets"] = tickets
    return out


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:4]), default=str))
