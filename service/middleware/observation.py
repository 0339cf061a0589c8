"""Request metrics and the access log, for every request that reaches the service."""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.logs import AccessLog
from service.metrics import IN_FLIGHT, REQUEST_LATENCY, REQUESTS, child

# probes and scrapes: frequent, cheap and not what the service is for
UNMETERED = frozenset({"/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"})


class Observation:
    def __init__(self, app: ASGIApp, endpoints: set[str], access: AccessLog | None = None) -> None:
        self.app = app
        self.endpoints = endpoints  # known paths; anything else is metered as "other"
        self.access = access  # None: the access log is off

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0  # until the response starts

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        path = scope["path"]
        metered = path not in UNMETERED
        start = time.perf_counter()
        if metered:
            IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            elapsed = time.perf_counter() - start
            status = status or 500  # an exception escaped: uvicorn answers 500
            if metered:
                IN_FLIGHT.dec()
                self._count(scope, status, elapsed)
            if self.access is not None:
                _log_access(self.access, scope, status, elapsed)

    def _count(self, scope: Scope, status: int, elapsed: float) -> None:
        state = scope.get("state", {})
        route = scope.get("route")  # the route Starlette matched: templates keep the labels few
        path = getattr(route, "path", None) if route is not None else scope["path"]
        endpoint = path if path in self.endpoints else "other"
        child(REQUESTS, endpoint, state.get("model", ""), state.get("version", ""), str(status)).inc()
        if not state.get("shed"):  # no work was done: its time says nothing of the service's latency
            child(REQUEST_LATENCY, endpoint).observe(elapsed)


def printable(text: str) -> str:
    """``text`` with control characters (CR, LF, ESC ...) escaped, so a client cannot forge lines."""
    return text if text.isprintable() else text.encode("unicode_escape").decode("ascii")


def _log_access(access: AccessLog, scope: Scope, status: int, elapsed: float) -> None:
    client: Any = scope.get("client") or ("-", 0)
    request_id = scope.get("state", {}).get("request_id", "-")  # checked against a safe pattern
    address, method, path = printable(str(client[0])), printable(scope["method"]), printable(scope["path"])
    access(address, method, path, status, elapsed, request_id)
