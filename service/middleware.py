"""One ASGI middleware around every request: request id, body-size limit, metrics, access log.

Pure ASGI (not BaseHTTPMiddleware) so the response streams through untouched.
"""

from __future__ import annotations

import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import PayloadTooLarge
from service.metrics import IN_FLIGHT, REQUEST_LATENCY, REQUESTS, child

access_log = logging.getLogger("service.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMETERED = {"/healthz", "/readyz", "/metrics"}


class RequestContext:
    def __init__(self, app: ASGIApp, max_body_bytes: int, endpoints: set[str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.endpoints = endpoints  # known paths; anything else is metered as "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        # random 128 bits as a uuid4 has them, without building a UUID object per request
        request_id = given if REQUEST_ID.match(given) else os.urandom(16).hex()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        path = scope["path"]
        status = 500
        limit = self.max_body_bytes

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"body: more than the limit of {limit} bytes")
            return message

        metered = path not in UNMETERED
        start = time.perf_counter()
        if metered:
            IN_FLIGHT.inc()
        try:
            declared = headers.get(b"content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                await _reject_too_large(send_with_id, int(declared), limit)
            else:
                await self.app(scope, limited_receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            if metered:
                IN_FLIGHT.dec()
                endpoint = path if path in self.endpoints else "other"
                child(REQUESTS, endpoint, state.get("model", ""), state.get("version", ""), str(status)).inc()
                child(REQUEST_LATENCY, endpoint).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, elapsed, request_id)


async def _reject_too_large(send: Send, declared: int, limit: int) -> None:
    """Answer 413 from the Content-Length alone, before reading any of the body."""
    body = f'{{"detail":"body: {declared} bytes, more than the limit of {limit} bytes"}}'.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _log_access(scope: Scope, status: int, elapsed: float, request_id: str) -> None:
    client: Any = scope.get("client") or ("-", 0)
    access_log.info(
        '%s "%s %s" %d %.1fms request_id=%s',
        client[0],
        scope["method"],
        scope["path"],
        status,
        elapsed * 1000,
        request_id,
        extra={
            "request_id": request_id,
            "method": scope["method"],
            "path": scope["path"],
            "status": status,
            "duration_ms": round(elapsed * 1000, 3),
            "client": client[0],
        },
    )
