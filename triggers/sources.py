"""The webhook's senders as a table: where each posts, how it proves who it is, what it means.

    path                 enabled by (DROPREEL_...)    authenticate        parse
    /events/sns          WEBHOOK_SNS_TOPIC_ARNS       SNS signature       S3 records in the Message
    /events/eventbridge  WEBHOOK_EVENTBRIDGE_SECRET   X-Dropreel-Secret   EventBridge S3 event
    /events/s3           WEBHOOK_S3_TOKEN             token               S3 records (MinIO, Ceph)
    /events/r2           WEBHOOK_R2_SECRET            HMAC + timestamp    R2 queue message

A new sender is one row: the route, the refusals and the intake are the same for all of them
(`triggers/webhook.py`). A source whose setting is unset has no `authenticate` and refuses
everything with 403. `parse` turns a delivery into object events, or into a `Reply` for the SNS
control messages that carry no object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import SecretStr

from config.settings import Settings
from triggers import auth
from triggers.delivery import Delivery
from triggers.events import eventbridge, r2, s3, sns
from triggers.events.model import ObjectEvent
from triggers.exceptions import ConfirmationFailed, MalformedEvent
from triggers.sns_signature import SnsVerifier, check_subscribe_url

log = logging.getLogger(__name__)

Confirmer = Callable[[str], None]
Authenticate = Callable[[Delivery], None]


@dataclass(frozen=True)
class Reply:
    """The answer to a delivery that carries no object (SNS subscription messages)."""

    body: dict[str, Any]


Parse = Callable[[Delivery], "list[ObjectEvent] | Reply"]


@dataclass(frozen=True)
class WebhookSource:
    """One sender: its route, the setting that enables it, how it authenticates and parses."""

    name: str
    path: str
    setting: str
    authenticate: Authenticate | None  # None: the setting is unset, the route refuses all
    parse: Parse

    @property
    def enabled(self) -> bool:
        return self.authenticate is not None


def confirm_subscription_https(url: str) -> None:
    """Default SubscriptionConfirmation handler: GET the (already host-checked) SubscribeURL."""
    import httpx

    try:
        response = httpx.get(url, timeout=10.0, follow_redirects=False)
    except httpx.HTTPError as err:
        raise ConfirmationFailed(
            f"could not reach SNS to confirm the subscription ({type(err).__name__})"
        ) from err
    if response.status_code != 200:
        raise ConfirmationFailed(
            f"SNS refused the subscription confirmation (HTTP {response.status_code})"
        )


def sns_parser(confirm: Confirmer) -> Parse:
    """SNS: S3 records inside a Notification; a SubscriptionConfirmation is confirmed."""

    def parse(delivery: Delivery) -> list[ObjectEvent] | Reply:
        envelope = sns.envelope(delivery.json)
        declared = delivery.headers.get("x-amz-sns-message-type")
        if declared and declared != envelope.Type:
            raise MalformedEvent("x-amz-sns-message-type does not match the message Type")
        if envelope.Type == "SubscriptionConfirmation":
            if not envelope.SubscribeURL:
                raise MalformedEvent("the SubscriptionConfirmation has no SubscribeURL")
            check_subscribe_url(envelope.SubscribeURL, envelope.region)
            confirm(envelope.SubscribeURL)
            log.info("confirmed the SNS subscription to %s", envelope.TopicArn)
            return Reply({"ok": True, "confirmed": True})
        if envelope.Type == "UnsubscribeConfirmation":
            log.warning("SNS says this endpoint was unsubscribed from %s", envelope.TopicArn)
            return Reply({"ok": True})
        return s3.object_events(envelope.message())

    return parse


def of_json(object_events: Callable[[Any], list[ObjectEvent]]) -> Parse:
    """A parser for senders whose whole body is the event."""
    return lambda delivery: object_events(delivery.json)


def _with_secret(
    check: Callable[..., None], secret: SecretStr | None, **bound: Any
) -> Authenticate | None:
    return None if secret is None else partial(check, secret=secret, **bound)


def webhook_sources(
    settings: Settings,
    verifier: SnsVerifier,
    confirm: Confirmer,
    clock: Callable[[], float],
) -> tuple[WebhookSource, ...]:
    """The four senders, with the secrets and topics `settings` configures."""

    def signed_by_sns(delivery: Delivery) -> None:
        verifier.verify(sns.envelope(delivery.json))

    return (
        WebhookSource(
            name="sns",
            path="/events/sns",
            setting="DROPREEL_WEBHOOK_SNS_TOPIC_ARNS",
            authenticate=signed_by_sns if verifier.topic_arns else None,
            parse=sns_parser(confirm),
        ),
        WebhookSource(
            name="eventbridge",
            path="/events/eventbridge",
            setting="DROPREEL_WEBHOOK_EVENTBRIDGE_SECRET",
            authenticate=_with_secret(
                auth.check_secret_header, settings.webhook_eventbridge_secret
            ),
            parse=of_json(eventbridge.object_events),
        ),
        WebhookSource(
            name="s3",
            path="/events/s3",
            setting="DROPREEL_WEBHOOK_S3_TOKEN",
            authenticate=_with_secret(auth.check_token, settings.webhook_s3_token),
            parse=of_json(s3.object_events),
        ),
        WebhookSource(
            name="r2",
            path="/events/r2",
            setting="DROPREEL_WEBHOOK_R2_SECRET",
            authenticate=_with_secret(
                auth.check_hmac,
                settings.webhook_r2_secret,
                max_skew=settings.webhook_max_skew_seconds,
                clock=clock,
            ),
            parse=of_json(r2.object_events),
        ),
    )
