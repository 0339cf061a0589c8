"""One ASGI middleware around every request: request id, body-size limit, time limit, secure
headers, metrics, access log.

Pure ASGI (not BaseHTTPMiddleware) so the response streams through untouched.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import (
    Overloaded,
    PayloadTooLarge,
    RequestTimeout,
    ServiceError,
    error_key,
    error_response,
)
from service.metrics import IN_FLIGHT, REQUEST_LATENCY, REQUESTS, SHED, TIMEOUTS, child
from service.security import secure_headers

access_log = logging.getLogger("service.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMETERED = {"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}


class RequestContext:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, timeout: float, max_in_flight: int, endpoints: set[str]
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # metered requests being answered by this worker
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
        status = 0  # until the response starts
        limit = self.max_body_bytes
        extra_headers = [*secure_headers(path), (b"x-request-id", request_id.encode())]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), *extra_headers]
            await send(message)

        received = 0
        declared = headers.get(b"content-length")
        body_in = declared in (None, b"0") and b"transfer-encoding" not in headers

        async def limited_receive() -> Message:
            nonlocal received, body_in
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge(f"body: more than the limit of {limit} bytes")
            body_in = body_in or not message.get("more_body", False)
            return message

        metered = path not in UNMETERED
        start = time.perf_counter()
        endpoint = path if path in self.endpoints else "other"
        # Requests over the limit are refused before their body is read. Without a limit every
        # request admitted shares the event loop with all the others, and waits for all of them.
        shed = metered and self.in_flight >= self.max_in_flight
        if metered:
            IN_FLIGHT.inc()
            self.in_flight += 1
        try:
            if shed:  # refused before routing: metered under its path
                child(SHED, endpoint).inc()
                busy = Overloaded(
                    f"requests: {self.in_flight - 1} in flight in this worker, the limit of "
                    "VAE_MAX_IN_FLIGHT; retry shortly"
                )
                await error_response(busy, path)(scope, receive, send_with_id)
            elif declared is not None and declared.isdigit() and int(declared) > limit:
                await _reject_too_large(send_with_id, int(declared), limit, error_key(path))
            else:
                timer = asyncio.timeout(self.timeout)
                try:
                    async with timer:
                        await self.app(scope, limited_receive, send_with_id)
                except TimeoutError:
                    if not timer.expired() or status:  # not ours, or too late for an answer
                        raise
                    child(TIMEOUTS, endpoint).inc()
                    await error_response(self._timed_out(body_in), path)(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - start
            status = status or 500  # an exception escaped: uvicorn answers 500
            route = scope.get("route")  # the route Starlette matched: templates keep the labels few
            if route is not None and getattr(route, "path", None) in self.endpoints:
                endpoint = route.path
            if metered:
                IN_FLIGHT.dec()
                self.in_flight -= 1
                child(REQUESTS, endpoint, state.get("model", ""), state.get("version", ""), str(status)).inc()
                if not shed:  # no work was done: its time says nothing of the service's latency
                    child(REQUEST_LATENCY, endpoint).observe(elapsed)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(scope, status, elapsed, request_id)

    def _timed_out(self, body_in: bool) -> ServiceError:
        if not body_in:  # the client is the slow one
            return RequestTimeout(f"body: not received within the limit of {self.timeout:g} s")
        return Overloaded(f"request: not answered within the limit of {self.timeout:g} s; retry shortly")


async def _reject_too_large(send: Send, declared: int, limit: int, key: str) -> None:
    """Answer 413 from the Content-Length alone, before reading any of the body."""
    body = f'{{"{key}":"body: {declared} bytes, more than the limit of {limit} bytes"}}'.encode()
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
