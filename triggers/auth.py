"""Shared-secret checks for senders that cannot sign like SNS does.

- EventBridge API destinations send a fixed header (`X-Dropreel-Secret`) set on the connection.
- MinIO and Ceph RGW send a token: `Authorization: Bearer <token>` (MinIO's auth_token), the
  bare token, or HTTP Basic with the token as password (credentials in the endpoint URL).
- The R2 forwarding Worker signs `<timestamp>.<body>` with HMAC-SHA256 and sends
  `X-Dropreel-Timestamp` (Unix seconds, at most 12 ASCII digits: no sign, space or `_` that
  `int()` would let through, and no number too large to compare with the clock) and
  `X-Dropreel-Signature: v1=<hex>`; a timestamp more than
  webhook_max_skew_seconds away from now is refused, which bounds how long a captured request
  could be replayed (and a replay is harmless anyway: the job is already claimed or done).

Each check takes the delivery and the configured secret (the source table binds the secret; a
source without one is refused before any check runs). Every comparison is constant-time, and no
refusal message repeats what the sender sent.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Callable

from pydantic import SecretStr

from triggers.delivery import Delivery
from triggers.exceptions import Forbidden, Unauthenticated

SECRET_HEADER = "x-dropreel-secret"
TIMESTAMP_HEADER = "x-dropreel-timestamp"
SIGNATURE_HEADER = "x-dropreel-signature"
SIGNATURE_SCHEME = "v1="
MAX_TIMESTAMP_DIGITS = 12  # Unix seconds until the year 33658; more digits is not a clock


def _same(given: str, expected: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


def check_secret_header(delivery: Delivery, *, secret: SecretStr) -> None:
    value = delivery.headers.get(SECRET_HEADER)
    if not value:
        raise Unauthenticated("the X-Dropreel-Secret header is missing")
    if not _same(value, secret):
        raise Forbidden("the X-Dropreel-Secret header is wrong")


def check_token(delivery: Delivery, *, secret: SecretStr) -> None:
    authorization = delivery.headers.get("authorization")
    if not authorization:
        raise Unauthenticated("the Authorization header is missing")
    scheme, _, rest = authorization.strip().partition(" ")
    given = authorization.strip()
    if scheme.lower() == "bearer":
        given = rest.strip()
    elif scheme.lower() == "basic":
        try:
            _, _, given = base64.b64decode(rest.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError) as err:
            raise Unauthenticated("the Basic credentials are not valid base64") from err
    if not given or not _same(given, secret):
        raise Forbidden("the token is wrong")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Dropreel-Signature value for a body (what the R2 Worker computes)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return SIGNATURE_SCHEME + digest.hexdigest()


def check_hmac(
    delivery: Delivery, *, secret: SecretStr, max_skew: float, clock: Callable[[], float]
) -> None:
    timestamp = delivery.headers.get(TIMESTAMP_HEADER)
    signature = delivery.headers.get(SIGNATURE_HEADER)
    if not timestamp or not signature:
        raise Unauthenticated(
            "the X-Dropreel-Timestamp and X-Dropreel-Signature headers are required"
        )
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS):
        raise Unauthenticated("X-Dropreel-Timestamp must be Unix seconds (digits only)")
    if abs(clock() - int(timestamp)) > max_skew:
        raise Unauthenticated(
            f"the request timestamp is more than {max_skew:.0f}s away from the server clock: "
            "it is stale or the sender's clock is wrong"
        )
    expected = sign(secret.get_secret_value(), timestamp, delivery.body)
    if not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise Forbidden("the request signature does not match")
