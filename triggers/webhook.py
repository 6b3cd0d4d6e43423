"""The webhook: bucket events in, claimed jobs out, an answer within milliseconds.

Every sender in the source table (`triggers/sources.py`) gets the same route: refuse it if its
setting is unset, read the body under the size limit, authenticate, parse into `ObjectEvent`s,
then let the intake list the folders the events touch, claim what is ready and hand it to a
non-blocking dispatcher: the route never waits for a render. `GET /healthz` answers probes.

Refusals map to HTTP in one place: every failure is a `WebhookError` that carries its status
(`triggers/exceptions.py`): 413 for a body over the limit, 400 for bad JSON, bad Unicode or the
wrong shape, 401 for missing or stale credentials, 403 for wrong ones or a disabled source, 503
when the bucket cannot be read. Bad input never yields a 500, and no response or log line
carries a secret. `create_app` is what `dropreel serve` runs under uvicorn and what a Modal web
endpoint imports (`triggers.webhook:create_app`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from config.settings import Settings
from handlers.errors import StorageError
from handlers.reconcile import Dispatcher
from handlers.runtime import Runtime
from triggers import delivery
from triggers.exceptions import BucketUnavailable, MalformedEvent, SourceDisabled, WebhookError
from triggers.intake import Intake
from triggers.sns_signature import CertFetcher, SnsVerifier
from triggers.sources import (
    Authenticate,
    Confirmer,
    Reply,
    WebhookSource,
    confirm_subscription_https,
    webhook_sources,
)

log = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 100


@contextmanager
def refusals() -> Iterator[None]:
    """Failures that are not yet a WebhookError become one, so each maps to its HTTP status."""
    try:
        yield
    except UnicodeError as err:  # lone surrogates in a key or a signed string
        raise MalformedEvent("the event holds text that is not valid Unicode") from err
    except StorageError as err:
        log.error("the bucket could not be read or written: %s", err)
        raise BucketUnavailable(
            "the bucket could not be read right now; send the event again later"
        ) from err


def route(
    source: WebhookSource, intake: Intake, limit: int
) -> Callable[[Request], Awaitable[JSONResponse]]:
    """The POST handler of one source: the same steps for every sender."""

    def answer(authenticate: Authenticate, received: delivery.Delivery) -> dict[str, Any]:
        with refusals():
            authenticate(received)
            parsed = source.parse(received)
            if isinstance(parsed, Reply):
                return parsed.body
            if len(parsed) > MAX_EVENTS_PER_REQUEST:
                raise MalformedEvent(
                    f"{len(parsed)} records in one request; senders deliver one per message "
                    f"(at most {MAX_EVENTS_PER_REQUEST} are accepted)"
                )
            return {"ok": True, **intake.accept(parsed).to_dict()}

    async def receive(request: Request) -> JSONResponse:
        authenticate = source.authenticate
        if authenticate is None:  # refused before a byte of the body is read
            raise SourceDisabled(f"this source is not enabled: set {source.setting}")
        received = await delivery.receive(request, limit)
        return JSONResponse(await run_in_threadpool(answer, authenticate, received))

    return receive


async def reachable() -> Response:
    """Senders (MinIO) probe the endpoint before sending; say it is here, nothing more."""
    return Response(status_code=200)


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
    intake = Intake(runtime, dispatcher)
    verifier = SnsVerifier(settings.webhook_sns_topic_arns, cert_fetcher)
    sources = webhook_sources(
        settings, verifier, confirm_subscription or confirm_subscription_https, clock
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        intake.close()
        for part in closables:
            part.close()

    app = FastAPI(
        title="dropreel webhook",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.intake = intake
    app.state.sources = sources

    @app.exception_handler(WebhookError)
    async def refused(request: Request, err: WebhookError) -> JSONResponse:
        log.warning(
            "%s refused (%d %s): %s", request.url.path, err.http_status, type(err).__name__, err
        )
        return JSONResponse({"error": str(err)}, status_code=err.http_status)

    for source in sources:
        app.add_api_route(
            source.path, route(source, intake, settings.webhook_max_body_bytes), methods=["POST"]
        )
        app.add_api_route(source.path, reachable, methods=["HEAD"], include_in_schema=False)

    @app.get("/healthz")
    async def healthz() -> dict[str, bool]:
        return {"ok": True}

    return app
