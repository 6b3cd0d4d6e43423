"""The webhook: bucket events in, claimed jobs out, an answer within milliseconds.

One route per sender, each authenticating and parsing at the edge into `ObjectEvent`s:

    POST /events/sns          AWS S3 -> SNS (signature-checked, topic allow-list)
    POST /events/eventbridge  AWS S3 -> EventBridge API destination (X-Dropreel-Secret header)
    POST /events/s3           raw S3 event JSON from MinIO / Ceph RGW (bearer token)
    POST /events/r2           Cloudflare R2 -> Queue -> forwarding Worker (HMAC + timestamp)
    GET  /healthz

Then the intake lists the folders the events touch, claims what is ready and hands it to a
non-blocking dispatcher: the route never waits for a render. Bodies are bounded (413), bad JSON
is 400, missing or stale credentials 401, wrong ones 403; bad input never yields a 500, and no
response or log line carries a secret. `create_app` is what `dropreel serve` runs under uvicorn
and what a Modal web endpoint imports (`triggers.webhook:create_app`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from config.settings import Settings
from handlers.errors import StorageError
from handlers.reconcile import Dispatcher
from handlers.runtime import Runtime
from triggers import auth
from triggers.events.eventbridge import EventBridgeEvent
from triggers.events.exceptions import (
    BodyTooLarge,
    ConfirmationFailed,
    MalformedEvent,
    WebhookError,
)
from triggers.events.r2 import parse_r2_payload
from triggers.events.s3 import parse_s3_payload
from triggers.events.sns import SnsEnvelope
from triggers.intake import Intake, IntakeReport
from triggers.sns_signature import CertFetcher, SnsVerifier, check_subscribe_url

log = logging.getLogger(__name__)

SNS_PATH = "/events/sns"
EVENTBRIDGE_PATH = "/events/eventbridge"
S3_PATH = "/events/s3"
R2_PATH = "/events/r2"
MAX_EVENTS_PER_REQUEST = 100
Confirmer = Callable[[str], None]


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


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is over the {limit}-byte limit")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over the {limit}-byte limit")
    return bytes(body)


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise MalformedEvent("the body is empty; expected a JSON event")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise MalformedEvent("the body is not valid JSON") from err
    except RecursionError as err:
        raise MalformedEvent("the body is JSON nested too deeply to be an event") from err


def _shape_error(err: ValidationError, what: str) -> MalformedEvent:
    first = err.errors()[0] if err.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ())) or "body"
    return MalformedEvent(f"not {what}: {where}: {first.get('msg', 'invalid')}")


def create_app(
    settings: Settings,
    runtime: Runtime,
    dispatcher: Dispatcher,
    *,
    cert_fetcher: CertFetcher | None = None,
    confirm_subscription: Confirmer | None = None,
    clock: Callable[[], float] = time.time,
    closables: Sequence[Any] = (),
) -> FastAPI:
    """Build the webhook app around a runtime and a dispatcher (infra wires them).

    `closables` (for example a worker pool) are closed when the app shuts down.
    """
    owned: list[Any] = list(closables)
    intake = Intake(runtime, dispatcher)
    verifier = SnsVerifier(settings.webhook_sns_topic_arns, cert_fetcher)
    confirm = confirm_subscription or confirm_subscription_https
    limit = settings.webhook_max_body_bytes

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        intake.close()
        for part in owned:
            part.close()

    app = FastAPI(
        title="dropreel webhook",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.intake = intake
    app.state.verifier = verifier
    app.state.dispatcher = dispatcher

    @app.exception_handler(WebhookError)
    async def refused(request: Request, err: WebhookError) -> JSONResponse:
        log.warning(
            "%s refused (%d %s): %s", request.url.path, err.http_status, type(err).__name__, err
        )
        return JSONResponse({"error": str(err)}, status_code=err.http_status)

    @app.exception_handler(UnicodeError)
    async def not_text(request: Request, err: UnicodeError) -> JSONResponse:
        log.warning("%s refused (400): text that is not valid Unicode", request.url.path)
        return JSONResponse(
            {"error": "the event holds text that is not valid Unicode"}, status_code=400
        )

    @app.exception_handler(StorageError)
    async def storage_down(request: Request, err: StorageError) -> JSONResponse:
        log.error("%s: the bucket could not be read or written: %s", request.url.path, err)
        return JSONResponse(
            {"error": "the bucket could not be read right now; send the event again later"},
            status_code=503,
        )

    def handle(events: list) -> dict[str, Any]:
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise MalformedEvent(
                f"{len(events)} records in one request; senders deliver one per message "
                f"(at most {MAX_EVENTS_PER_REQUEST} are accepted)"
            )
        report: IntakeReport = intake.accept(events)
        return {"ok": True, **report.to_dict()}

    def handle_sns(envelope: SnsEnvelope) -> dict[str, Any]:
        verifier.verify(envelope)
        if envelope.Type == "SubscriptionConfirmation":
            if not envelope.SubscribeURL:
                raise MalformedEvent("the SubscriptionConfirmation has no SubscribeURL")
            check_subscribe_url(envelope.SubscribeURL, envelope.region)
            confirm(envelope.SubscribeURL)
            log.info("confirmed the SNS subscription to %s", envelope.TopicArn)
            return {"ok": True, "confirmed": True}
        if envelope.Type == "UnsubscribeConfirmation":
            log.warning("SNS says this endpoint was unsubscribed from %s", envelope.TopicArn)
            return {"ok": True}
        return handle(envelope.object_events())

    @app.post(SNS_PATH)
    async def sns(request: Request) -> JSONResponse:
        payload = parse_json(await read_body(request, limit))
        try:
            envelope = SnsEnvelope.model_validate(payload)
        except ValidationError as err:
            raise _shape_error(err, "an SNS message") from err
        declared = request.headers.get("x-amz-sns-message-type")
        if declared and declared != envelope.Type:
            raise MalformedEvent("x-amz-sns-message-type does not match the message Type")
        return JSONResponse(await run_in_threadpool(handle_sns, envelope))

    @app.post(EVENTBRIDGE_PATH)
    async def eventbridge(request: Request) -> JSONResponse:
        auth.check_secret_header(
            request.headers.get(auth.SECRET_HEADER),
            settings.webhook_eventbridge_secret,
            "DROPREEL_WEBHOOK_EVENTBRIDGE_SECRET",
        )
        payload = parse_json(await read_body(request, limit))
        try:
            events = EventBridgeEvent.model_validate(payload).to_events()
        except ValidationError as err:
            raise _shape_error(err, "an EventBridge S3 event") from err
        return JSONResponse(await run_in_threadpool(handle, events))

    @app.post(S3_PATH)
    async def raw_s3(request: Request) -> JSONResponse:
        auth.check_token(
            request.headers.get("authorization"),
            settings.webhook_s3_token,
            "DROPREEL_WEBHOOK_S3_TOKEN",
        )
        payload = parse_json(await read_body(request, limit))
        try:
            events = parse_s3_payload(payload, "s3")
        except ValidationError as err:
            raise _shape_error(err, "an S3 event notification") from err
        return JSONResponse(await run_in_threadpool(handle, events))

    @app.post(R2_PATH)
    async def r2(request: Request) -> JSONResponse:
        body = await read_body(request, limit)
        auth.check_hmac(
            request.headers.get(auth.TIMESTAMP_HEADER),
            request.headers.get(auth.SIGNATURE_HEADER),
            body,
            settings.webhook_r2_secret,
            clock(),
            settings.webhook_max_skew_seconds,
            "DROPREEL_WEBHOOK_R2_SECRET",
        )
        try:
            events = parse_r2_payload(parse_json(body))
        except ValidationError as err:
            raise _shape_error(err, "an R2 event notification") from err
        return JSONResponse(await run_in_threadpool(handle, events))

    async def reachable() -> Response:
        """Senders (MinIO) probe the endpoint before sending; say it is here, nothing more."""
        return Response(status_code=200)

    for path in (SNS_PATH, EVENTBRIDGE_PATH, S3_PATH, R2_PATH):
        app.add_api_route(path, reachable, methods=["HEAD"], include_in_schema=False)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app
