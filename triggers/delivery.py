"""What a sender delivered: its headers and a body read under a size limit, decoded as JSON once.

Every route reads its request the same way, so the limits hold everywhere: a body over the limit
is refused while it streams (413), and a body that is not JSON, not UTF-8 or nested too deeply
to be an event is a 400, never a 500. A body that stops arriving for BODY_READ_TIMEOUT seconds is
a 408 (a half-sent request never holds a worker), and a sender that hangs up mid-body is one
warning line in the log, not a traceback.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from starlette.requests import ClientDisconnect, Request

from triggers.exceptions import BodyTooLarge, ClientGone, MalformedEvent, RequestTimeout

BODY_READ_TIMEOUT = 10.0


@dataclass(frozen=True)
class Delivery:
    """One request to a webhook route: headers (case-insensitive) and the bounded raw body."""

    headers: Mapping[str, str]
    body: bytes

    @cached_property
    def json(self) -> Any:
        """The body decoded as JSON."""
        if not self.body.strip():
            raise MalformedEvent("the body is empty; expected a JSON event")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as err:
            raise MalformedEvent("the body is not valid JSON") from err
        except RecursionError as err:
            raise MalformedEvent("the body is JSON nested too deeply to be an event") from err


async def receive(request: Request, limit: int) -> Delivery:
    """The request as a Delivery, refused with 413 as soon as its body passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"the body is over the {limit}-byte limit")
    body = bytearray()
    chunks = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(BODY_READ_TIMEOUT):
                chunk = await anext(chunks, None)
        except TimeoutError as err:
            raise RequestTimeout(
                f"no part of the body arrived for {BODY_READ_TIMEOUT:g}s; send it whole"
            ) from err
        except ClientDisconnect as err:
            raise ClientGone("the sender hung up before the body was complete") from err
        if chunk is None:
            return Delivery(request.headers, bytes(body))
        body += chunk
        if len(body) > limit:
            raise BodyTooLarge(f"the body is over the {limit}-byte limit")
