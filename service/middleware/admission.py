"""Which requests are taken on, and for how long: a limit on requests in flight (refused before their
body is read), on body size (by Content-Length, then while the body streams in), and on time.

Without the in-flight limit every request admitted shares the event loop with all the others, and
waits for all of them; with it, the ones admitted are answered in bounded time.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_key, error_response
from service.core.errors import Overloaded, PayloadTooLarge, RequestTimeout, ServiceError
from service.metrics import SHED, TIMEOUTS, child
from service.middleware.observation import UNMETERED


class Admission:
    def __init__(
        self, app: ASGIApp, max_body_bytes: int, timeout: float, max_in_flight: int, endpoints: set[str]
    ) -> None:
        self.app = app
        self.endpoints = endpoints  # known paths, the metrics' labels; anything else is "other"
        self.max_body_bytes = max_body_bytes
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # requests (probes aside) being answered by this worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMETERED:  # probes always answer
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if self.in_flight >= self.max_in_flight:
            scope.setdefault("state", {})["shed"] = True
            child(SHED, path if path in self.endpoints else "other").inc()
            busy = Overloaded(
                "requests",
                f"{self.in_flight} in flight in this worker, the limit of VAE_MAX_IN_FLIGHT; retry shortly",
            )
            await error_response(busy, path)(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reject_too_large(send, int(declared), self.max_body_bytes, error_key(path))
            return
        body_in = declared in (None, b"0") and b"transfer-encoding" not in headers
        self.in_flight += 1
        try:
            await self._timed(scope, receive, send, body_in)
        finally:
            self.in_flight -= 1

    async def _timed(self, scope: Scope, receive: Receive, send: Send, body_in: bool) -> None:
        received, limit, started = 0, self.max_body_bytes, False

        async def limited_receive() -> Message:
            nonlocal received, body_in
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise PayloadTooLarge("body", f"more than the limit of {limit} bytes")
            body_in = body_in or not message.get("more_body", False)
            return message

        async def send_started(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        timer = asyncio.timeout(self.timeout)
        try:
            async with timer:
                await self.app(scope, limited_receive, send_started)
        except TimeoutError:
            if not timer.expired() or started:  # not ours, or too late for an answer
                raise
            child(TIMEOUTS, _endpoint(scope)).inc()
            await error_response(self._timed_out(body_in), scope["path"])(scope, receive, send)

    def _timed_out(self, body_in: bool) -> ServiceError:
        if not body_in:  # the client is the slow one
            return RequestTimeout("body", f"not received within the limit of {self.timeout:g} s")
        return Overloaded("request", f"not answered within the limit of {self.timeout:g} s; retry shortly")


def _endpoint(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", "other") if route is not None else "other"


async def _reject_too_large(send: Send, declared: int, limit: int, key: str) -> None:
    """Answer 413 from the Content-Length alone, before reading any of the body."""
    body = (
        f'{{"{key}":"body: {declared} bytes, more than the limit of {limit} bytes","field":"body"}}'
    ).encode()
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
