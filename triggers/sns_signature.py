"""SNS message signature verification (SignatureVersion 1 = SHA1, 2 = SHA256).

Order of checks, cheapest and safest first: the TopicArn must be one we configured (so nobody
can make us fetch certificates for their own topics), the Timestamp must be fresh, the
certificate URL must be HTTPS on an `sns.<region>.amazonaws.com` host of the topic's region, then
the RSA PKCS#1 v1.5 signature over the canonical string is checked with the certificate's public
key. Where the certificate comes from is injected (`CertFetcher`), so tests sign with a
certificate made in the test and never touch the network.

Freshness: SNS signs a message once, at publish time, and re-sends the same signed message while
it retries; AWS caps the total retry time of an HTTP/S delivery policy at 3,600 seconds, a hard
limit ("Amazon SNS message delivery retries", SNS developer guide). So a genuine delivery is never
older than an hour, and a signed message whose Timestamp is more than MAX_AGE (that hour plus
CLOCK_SKEW) in the past, or more than CLOCK_SKEW in the future, is a replay: 401.

Certificate fetches cost an outbound request, so each distinct URL is fetched at most once per
TTL, failures included: a key is kept KEY_TTL (the most recently used CACHE_SIZE of them), a
failure FAILURE_TTL (short, so SNS's own retries succeed once a network blip is over). At most
MAX_FAILURES failing URLs are remembered; past that, new URLs are refused (503, SNS retries)
without a fetch until the oldest failures expire, so no sender can make us fetch without bound.
Concurrent requests for the same URL wait for one fetch.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from triggers.events.sns import SnsEnvelope
from triggers.exceptions import (
    CertificateUnavailable,
    Forbidden,
    Unauthenticated,
    UntrustedCertificate,
    WebhookError,
)

log = logging.getLogger(__name__)

CertFetcher = Callable[[str], bytes]
SNS_HOST = re.compile(r"^sns\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 16 * 1024
CACHE_SIZE = 32
MAX_URL_CHARS = 512
KEY_TTL = timedelta(hours=24)
FAILURE_TTL = timedelta(minutes=5)
MAX_FAILURES = 1024
CLOCK_SKEW = timedelta(minutes=5)
MAX_AGE = timedelta(seconds=3600) + CLOCK_SKEW
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def sns_host_region(url: str, what: str) -> str:
    """The region of an `https://sns.<region>.amazonaws.com/...` URL; refuse anything else."""
    if any(ch.isspace() or ch == "\\" for ch in url):
        raise UntrustedCertificate(f"the {what} is not a plain URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        raise UntrustedCertificate(f"the {what} is not a valid URL") from err
    host = parts.hostname or ""
    match = SNS_HOST.match(host)
    if (
        parts.scheme != "https"
        or match is None
        or port not in (None, 443)
        or parts.username is not None
        or parts.password is not None
    ):
        raise UntrustedCertificate(
            f"the {what} must be https://sns.<region>.amazonaws.com/...; refusing host "
            f"{host or '(none)'!r}"
        )
    return match.group(1)


def check_cert_url(url: str, region: str | None) -> None:
    if len(url) > MAX_URL_CHARS:
        raise UntrustedCertificate("the SigningCertURL is implausibly long")
    found = sns_host_region(url, "SigningCertURL")
    if not urlsplit(url).path.endswith(".pem"):
        raise UntrustedCertificate("the SigningCertURL does not name a .pem certificate")
    if region is not None and found != region:
        raise UntrustedCertificate(
            f"the SigningCertURL is in region {found!r} but the topic is in {region!r}"
        )


def check_subscribe_url(url: str, region: str | None) -> None:
    found = sns_host_region(url, "SubscribeURL")
    if region is not None and found != region:
        raise UntrustedCertificate(
            f"the SubscribeURL is in region {found!r} but the topic is in {region!r}"
        )
    query = parse_qs(urlsplit(url).query)
    if query.get("Action") != ["ConfirmSubscription"]:
        raise Forbidden("the SubscribeURL is not a ConfirmSubscription request")


def fetch_certificate_https(url: str) -> bytes:
    """Default CertFetcher: GET the PEM over HTTPS (certificate-checked), no redirects, bounded."""
    import httpx

    with httpx.stream("GET", url, timeout=5.0, follow_redirects=False) as response:
        if response.status_code != 200:
            raise UntrustedCertificate(
                f"could not fetch the SNS signing certificate (HTTP {response.status_code})"
            )
        data = b""
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > MAX_CERT_BYTES:
                raise UntrustedCertificate("the SNS signing certificate is implausibly large")
        return data


def check_fresh(timestamp: str, now: datetime) -> None:
    """Refuse a signed message sent longer ago than SNS ever retries (or from the future)."""
    try:
        sent = datetime.fromisoformat(timestamp)
    except ValueError as err:
        raise Unauthenticated("the SNS Timestamp is not an ISO 8601 time") from err
    if sent.tzinfo is None:
        raise Unauthenticated("the SNS Timestamp has no time zone")
    if sent < now - MAX_AGE:
        raise Unauthenticated(
            f"the SNS message was sent more than {MAX_AGE.seconds // 60} minutes ago, longer than "
            "SNS retries a delivery: refusing it as a replay"
        )
    if sent > now + CLOCK_SKEW:
        raise Unauthenticated(
            "the SNS Timestamp is in the future: the sender's or this server's clock is wrong"
        )


@dataclass(frozen=True)
class _Fetched:
    """What one certificate fetch gave: a key, or the refusal to repeat, until `expires`."""

    expires: datetime
    key: rsa.RSAPublicKey | None = None
    error: type[WebhookError] | None = None
    message: str = ""

    def result(self) -> rsa.RSAPublicKey:
        if self.key is not None:
            return self.key
        assert self.error is not None
        raise self.error(self.message)


class SnsVerifier:
    """Checks topic, freshness, certificate URL and signature of an SNS envelope."""

    def __init__(
        self,
        topic_arns: Iterable[str],
        fetch: CertFetcher | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.topic_arns = frozenset(topic_arns)
        self.fetch = fetch or fetch_certificate_https
        self.now = now
        self._keys: OrderedDict[str, _Fetched] = OrderedDict()
        self._failures: dict[str, _Fetched] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.fetches = 0

    def verify(self, envelope: SnsEnvelope) -> None:
        if envelope.TopicArn not in self.topic_arns:
            raise Forbidden("messages from this topic are not accepted here")
        if not envelope.Signature or not envelope.SigningCertURL or not envelope.SignatureVersion:
            raise Unauthenticated("the SNS message is not signed")
        check_fresh(envelope.Timestamp, self.now())
        algorithm = HASHES.get(envelope.SignatureVersion)
        if algorithm is None:
            raise Forbidden(
                f"unsupported SNS SignatureVersion {envelope.SignatureVersion!r} (1 or 2 expected)"
            )
        check_cert_url(envelope.SigningCertURL, envelope.region)
        try:
            signature = base64.b64decode(envelope.Signature, validate=True)
        except (binascii.Error, ValueError) as err:
            raise Forbidden("the SNS signature is not valid base64") from err
        key = self._public_key(envelope.SigningCertURL)
        try:
            key.verify(signature, envelope.string_to_sign(), padding.PKCS1v15(), algorithm())
        except InvalidSignature as err:
            raise Forbidden("the SNS signature does not match the message") from err

    def _public_key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            known = self._known(url)
            if known is not None:
                return known.result()
            gate = self._fetching.setdefault(url, threading.Lock())
        with gate:  # one fetch per URL at a time; the others find its outcome
            with self._lock:
                known = self._known(url)
                if known is not None:
                    return known.result()
                self._make_room_for_a_failure()
                self.fetches += 1
            outcome = self._fetch_key(url)
            with self._lock:
                self._remember(url, outcome)
                self._fetching.pop(url, None)
        return outcome.result()

    def _known(self, url: str) -> _Fetched | None:
        """The unexpired outcome of an earlier fetch of `url` (caller holds the lock)."""
        now = self.now()
        for cache in (self._keys, self._failures):
            known = cache.get(url)
            if known is not None and known.expires > now:
                if cache is self._keys:
                    self._keys.move_to_end(url)
                return known
            cache.pop(url, None)
        return None

    def _make_room_for_a_failure(self) -> None:
        """Refuse to fetch while MAX_FAILURES failing URLs are remembered (caller holds lock)."""
        if len(self._failures) < MAX_FAILURES:
            return
        now = self.now()
        for url in [url for url, known in self._failures.items() if known.expires <= now]:
            del self._failures[url]
        if len(self._failures) >= MAX_FAILURES:
            raise CertificateUnavailable(
                "too many SNS certificate URLs failed recently; try again in a few minutes"
            )

    def _remember(self, url: str, outcome: _Fetched) -> None:
        if outcome.key is None:
            self._failures[url] = outcome
            return
        self._keys[url] = outcome
        while len(self._keys) > CACHE_SIZE:
            self._keys.popitem(last=False)

    def _fetch_key(self, url: str) -> _Fetched:
        """Fetch and check the certificate at `url`: its key, or the refusal, with an expiry."""
        now = self.now()
        try:
            cert = self._load(url, now)
        except (UntrustedCertificate, CertificateUnavailable) as err:
            return _Fetched(now + FAILURE_TTL, error=type(err), message=str(err))
        expires = min(now + KEY_TTL, cert.not_valid_after_utc)  # never trusted past its dates
        return _Fetched(expires, key=cert.public_key())

    def _load(self, url: str, now: datetime) -> x509.Certificate:
        try:
            pem = self.fetch(url)
        except UntrustedCertificate:
            raise
        except Exception as err:  # network trouble is not the sender's fault: let SNS retry
            log.warning("fetching the SNS certificate failed: %s", type(err).__name__)
            raise CertificateUnavailable(
                "the SNS signing certificate could not be fetched right now"
            ) from err
        try:
            cert = x509.load_pem_x509_certificate(pem)
        except ValueError as err:
            raise UntrustedCertificate(
                "the SNS signing certificate is not a PEM certificate"
            ) from err
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise UntrustedCertificate("the SNS signing certificate is expired or not yet valid")
        if not isinstance(cert.public_key(), rsa.RSAPublicKey):
            raise UntrustedCertificate("the SNS signing certificate does not hold an RSA key")
        return cert
