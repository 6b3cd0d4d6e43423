"""SNS message signature verification (SignatureVersion 1 = SHA1, 2 = SHA256).

Order of checks, cheapest and safest first: the TopicArn must be one we configured (so nobody
can make us fetch certificates for their own topics), the certificate URL must be HTTPS on an
`sns.<region>.amazonaws.com` host of the topic's region, then the RSA PKCS#1 v1.5 signature over
the canonical string is checked with the certificate's public key. Certificates are fetched
once per URL; the most recently used CACHE_SIZE public keys are kept, never more. Where the
certificate comes from is injected (`CertFetcher`), so tests sign with a certificate made in the
test and never touch the network.
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
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
)

log = logging.getLogger(__name__)

CertFetcher = Callable[[str], bytes]
SNS_HOST = re.compile(r"^sns\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
MAX_CERT_BYTES = 16 * 1024
CACHE_SIZE = 32
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


class SnsVerifier:
    """Checks topic, certificate URL and signature of an SNS envelope; caches a few public keys."""

    def __init__(
        self,
        topic_arns: Iterable[str],
        fetch: CertFetcher | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.topic_arns = frozenset(topic_arns)
        self.fetch = fetch or fetch_certificate_https
        self.now = now
        self._keys: OrderedDict[str, rsa.RSAPublicKey] = OrderedDict()
        self._lock = threading.Lock()

    def verify(self, envelope: SnsEnvelope) -> None:
        if envelope.TopicArn not in self.topic_arns:
            raise Forbidden("messages from this topic are not accepted here")
        if not envelope.Signature or not envelope.SigningCertURL or not envelope.SignatureVersion:
            raise Unauthenticated("the SNS message is not signed")
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
            key = self._keys.get(url)
            if key is not None:
                self._keys.move_to_end(url)
                return key
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
        now = self.now()
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise UntrustedCertificate("the SNS signing certificate is expired or not yet valid")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise UntrustedCertificate("the SNS signing certificate does not hold an RSA key")
        with self._lock:
            self._keys[url] = key
            while len(self._keys) > CACHE_SIZE:
                self._keys.popitem(last=False)
        return key
