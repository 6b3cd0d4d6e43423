"""The SNS HTTP(S) delivery envelope: Notification, SubscriptionConfirmation, UnsubscribeConfirmation.

Every value stays the exact string SNS sent, because the signature covers those strings. The
signature fields are optional here so that an unsigned message is refused as unauthenticated
(401) by the verifier rather than as malformed.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from triggers.events.model import validated
from triggers.exceptions import MalformedEvent

MessageType = Literal["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


class SnsEnvelope(BaseModel):
    model_config = ConfigDict(frozen=True)

    Type: MessageType
    MessageId: str = Field(min_length=1)
    TopicArn: str = Field(min_length=1)
    Message: str
    Timestamp: str = Field(min_length=1)
    Subject: str | None = None
    SubscribeURL: str | None = None
    Token: str | None = None
    UnsubscribeURL: str | None = None
    SignatureVersion: str | None = None
    Signature: str | None = None
    SigningCertURL: str | None = None

    @property
    def region(self) -> str | None:
        """The region in the TopicArn (arn:aws:sns:<region>:<account>:<name>)."""
        parts = self.TopicArn.split(":")
        return parts[3] if len(parts) >= 6 and parts[0] == "arn" and parts[2] == "sns" else None

    def string_to_sign(self) -> bytes:
        """The canonical text SNS signs: `Name\\nValue\\n` for each field present, in order."""
        names = NOTIFICATION_FIELDS if self.Type == "Notification" else SUBSCRIPTION_FIELDS
        parts = []
        for name in names:
            value = getattr(self, name)
            if value is None:
                if name in ("Subject",):
                    continue
                raise MalformedEvent(f"the SNS {self.Type} has no {name} field")
            parts.append(f"{name}\n{value}\n")
        return "".join(parts).encode()

    def message(self) -> Any:
        """A Notification's Message, decoded (it holds an S3 event notification)."""
        try:
            return json.loads(self.Message)
        except (ValueError, RecursionError) as err:
            raise MalformedEvent(
                "the SNS Message is not JSON; this topic should only carry S3 event notifications"
            ) from err


def envelope(payload: Any) -> SnsEnvelope:
    """The SNS envelope in a decoded body."""
    return validated(SnsEnvelope, payload, "an SNS message")
