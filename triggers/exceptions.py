"""Refusals of the webhook: each failure is a class that carries the HTTP status its sender gets.

The app maps every `WebhookError` to `{"error": message}` with `http_status`, in one handler.
The messages go back to the sender, so they say what is wrong in plain words and never echo a
secret, a signature or a token.
"""

from __future__ import annotations

from handlers.errors import DropreelError


class WebhookError(DropreelError):
    """Base of every refusal at the webhook: a 400 unless the class says otherwise."""

    http_status = 400


class MalformedEvent(WebhookError):
    """The body is not JSON, not valid Unicode, or not the event shape this route expects."""


class BodyTooLarge(WebhookError):
    """The body is over webhook_max_body_bytes."""

    http_status = 413


class RequestTimeout(WebhookError):
    """The sender stopped sending the body before it was complete."""

    http_status = 408


class ClientGone(WebhookError):
    """The sender hung up before its body was complete; nobody is left to answer."""


class Unauthenticated(WebhookError):
    """No credentials, or credentials that can no longer be checked (missing header, stale time)."""

    http_status = 401


class Forbidden(WebhookError):
    """Credentials were given and are wrong: forged signature, wrong token, unknown topic."""

    http_status = 403


class SourceDisabled(Forbidden):
    """This route's secret or topic list is not configured, so nothing is let in through it."""


class UntrustedCertificate(Forbidden):
    """The SNS signing certificate URL is not an SNS host over HTTPS, or the certificate is bad."""


class Unavailable(WebhookError):
    """Something the answer needs is down right now; the sender delivers the event again later."""

    http_status = 503


class CertificateUnavailable(Unavailable):
    """The SNS signing certificate could not be fetched right now."""


class BucketUnavailable(Unavailable):
    """The bucket could not be listed or written right now."""


class ConfirmationFailed(Unavailable):
    """SNS could not be reached or refused to confirm the subscription (SNS sends it again)."""

    http_status = 502
