"""Which requests are taken on, and how much they may hold: a limit on requests being worked on,
a budget of body bytes in memory, the body-size limit and the request timeout.

- In flight: a request counts once its body is in (uploads still arriving do no work); over
  ``VAE_MAX_IN_FLIGHT`` a new request is refused at once, before its body is read. Without this
  every request admitted shares the event loop with all the others, and waits for all of them.
- Body budget: the bytes of request bodies a worker holds at once are bounded by
  ``VAE_MAX_BODY_MEMORY_BYTES``: a declared length is reserved before the body is read, a chunked
  one as it arrives. A request that would go over is refused with 503 and Retry-After (one request
  alone is always admitted, up to the body-size limit). 48 concurrent 15 MiB bodies once took a
  worker from 190 to 854 MiB; with the budget, memory no longer grows with the number of uploads
  (reliability/memory.md).
- Body size: over ``VAE_MAX_BODY_BYTES``, 413 from the Content-Length, or as soon as a streamed
  body passes it.
- Timeout: ``VAE_REQUEST_TIMEOUT_SECONDS`` per request; 408 while the body arrives, else 503.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import error_key, error_response
from service.core.errors import Overloaded, PayloadTooLarge, RequestTimeout, ServiceError
from service.metrics import BODY_BYTES, BUDGET_REFUSED, SHED, TIMEOUTS, child
from service.middleware.observation import UNMETERED


class Admission:
    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int,
        max_body_memory_bytes: int,
        timeout: float,
        max_in_flight: int,
        endpoints: set[str],
    ) -> None:
        self.app = app
        self.endpoints = endpoints  # known paths, the metrics' labels; anything else is "other"
        self.max_body_bytes = max_body_bytes
        self.budget = max_body_memory_bytes
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.in_flight = 0  # requests whose body is in, being worked on (probes aside)
        self.held = 0  # body bytes reserved by the requests of this worker

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNMETERED:  # probes always answer
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        label = path if path in self.endpoints else "other"
        if self.in_flight >= self.max_in_flight:
            message = (
                f"{self.in_flight} in flight in this worker, the limit of VAE_MAX_IN_FLIGHT; retry shortly"
            )
            await self._refuse(scope, receive, send, SHED, label, Overloaded("requests", message))
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        length = int(declared) if declared is not None and declared.isdigit() else 0
        if length > self.max_body_bytes:
            await _reject_too_large(send, length, self.max_body_bytes, error_key(path))
            return
        if length and self.held and self.held + length > self.budget:
            refusal = Overloaded("body", self._over_budget(length))
            await self._refuse(scope, receive, send, BUDGET_REFUSED, label, refusal)
            return
        body_in = length == 0 and b"transfer-encoding" not in headers
        await self._admitted(scope, receive, send, length, body_in, label)

    async def _admitted(
        self, scope: Scope, receive: Receive, send: Send, reserved: int, body_in: bool, label: str
    ) -> None:
        received, started, working = 0, False, body_in
        self._hold(reserved)
        if working:
            self.in_flight += 1

        async def limited_receive() -> Message:
            nonlocal received, reserved, body_in, working
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_body_bytes:
                raise PayloadTooLarge("body", f"more than the limit of {self.max_body_bytes} bytes")
            if received > reserved:  # a chunked body: reserved as it arrives
                if self.held + received - reserved > self.budget and self.held > reserved:
                    child(BUDGET_REFUSED, label).inc()
                    raise Overloaded("body", self._over_budget(received))
                self._hold(received - reserved)
                reserved = received
            if not message.get("more_body", False) and not working:
                body_in = working = True
                self.in_flight += 1
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
            child(TIMEOUTS, label).inc()
            await error_response(self._timed_out(body_in), scope["path"])(scope, receive, send)
        finally:
            self._hold(-reserved)
            if working:
                self.in_flight -= 1

    def _hold(self, size: int) -> None:
        if size:
            self.held += size
            BODY_BYTES.inc(size)

    def _over_budget(self, size: int) -> str:
        return (
            f"{size} bytes would take this worker's request bodies past {self.budget} bytes in memory "
            f"({self.held} held; VAE_MAX_BODY_MEMORY_BYTES); retry shortly"
        )

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, counter: object, label: str, error: ServiceError
    ) -> None:
        scope.setdefault("state", {})["shed"] = True  # no work done: kept out of the latency histogram
        child(counter, label).inc()  # type: ignore[arg-type]
        await self._discard_body(receive)
        await error_response(error, scope["path"])(scope, receive, send)

    async def _discard_body(self, receive: Receive) -> None:
        """Read what the client sends, a chunk at a time and keeping none, before refusing it: a proxy
        that is still sending a body takes an answer that comes first for a broken connection (nginx
        answered 502 instead of passing the 503 on), so the refusal waits for the body, bounded by
        the body-size limit and the request timeout."""
        received = 0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.timeout):
                while received <= self.max_body_bytes:
                    message = await receive()
                    received += len(message.get("body", b""))
                    if message["type"] != "http.request" or not message.get("more_body", False):
                        return

    def _timed_out(self, body_in: bool) -> ServiceError:
        if not body_in:  # the client is the slow one
            return RequestTimeout("body", f"not received within the limit of {self.timeout:g} s")
        return Overloaded("request", f"not answered within the limit of {self.timeout:g} s; retry shortly")


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
