"""uvicorn's httptools protocol with bounds on a request's head (request line and headers): its
size and the time it may take to arrive.

httptools has no size limit of its own: a request with a 1 MiB header, or 20,000 headers, was read
whole and answered 200 (measured), so one client could make a worker buffer headers without end.
The head's bytes are counted twice: per read while the head is incomplete (a partial head never
buffers more than one read past the limit), and per parsed line (a head that arrives whole in one
read is still measured). Over ``VAE_MAX_HEADER_BYTES`` the answer is 431 and the connection closes.

uvicorn has no timeout for a head either: a connection may open and send half a head, or nothing,
and hold its place for ever; 210 such sockets made every request 503 under a connection limit of
200 (measured). Here a head must be complete within ``VAE_HEAD_TIMEOUT_SECONDS`` of the connection
opening or of its first byte, else the connection is closed (408 when something had arrived).
Probes are never refused by the connection limit, so an orchestrator can still tell the worker lives.

An answer's head and body leave in one write (``OneWrite``): uvicorn writes them separately, and a
proxy passes a head on as soon as it has it, so a worker killed between the two writes left a client
with a cut-off answer that no gateway could retry (seen once in 400 requests when a replica was
SIGKILLed mid-run, tests/deploy/test_gateway.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROBES = frozenset({b"/healthz", b"/readyz", b"/v2/health/live", b"/v2/health/ready"})
LINE_OVERHEAD = 4  # ": " and CRLF of a header line, not in the parsed name and value


class ServerConfig(uvicorn.Config):
    """uvicorn's configuration and the head's bounds, one picklable object for every worker."""

    def __init__(self, app: Any, *, max_head_bytes: int, head_timeout: float, **options: Any) -> None:
        super().__init__(app, http=BoundedHeadProtocol, **options)
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout


class HeadTooLarge(Exception):
    """Stops the parser once a head is refused."""


class OneWrite:
    """The connection's transport, holding back each answer's head until its first body write and
    then writing both at once. Everything else (a whole answer written at once, 100 Continue, the
    head of an answer to HEAD, flow control, closing) passes through; held bytes are written before
    the transport closes."""

    def __init__(self, transport: asyncio.Transport, bodied: Callable[[], bool]) -> None:
        self._transport = transport
        self._bodied = bodied  # whether the answer being written gets a body write (not for HEAD)
        self._held = b""

    def write(self, data: bytes) -> None:
        if self._held:
            # one writev under uvloop: no copy of the body to put the head in front of it
            self._transport.writelines((self._held, data))
            self._held = b""
            return
        if (
            data.startswith(b"HTTP/1.1 ")
            and data.endswith(b"\r\n\r\n")
            and not data.startswith(INFORMATIONAL)
            and self._bodied()
        ):
            self._held = data  # a head alone: its body follows within the same answer
            return
        self._transport.write(data)

    def close(self) -> None:
        if self._held:
            self._transport.write(self._held)
            self._held = b""
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


INFORMATIONAL = b"HTTP/1.1 1"  # 100 Continue: a head that no body follows


class BoundedHeadProtocol(HttpToolsProtocol):
    def __init__(self, config: ServerConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.max_head_bytes = config.max_head_bytes
        self.head_timeout = config.head_timeout
        self.head_bytes = 0  # of the request head being read, per read
        self.parsed_bytes = 0  # of the request head being read, per parsed line
        self.reading_head = True
        self.crossed = False  # a head or a message ended within the current read
        self.refused = False
        self.head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWrite(transport, self._bodied))  # type: ignore[arg-type]
        self._start_head_timer()

    def _bodied(self) -> bool:
        # uvicorn writes no body at all for HEAD, so a held head would wait for the next answer
        return self.cycle is not None and self.cycle.scope["method"] != "HEAD"

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self.crossed = False
        if self.reading_head and self.head_timer is None:
            self._start_head_timer()  # the first byte of a new request on a kept-alive connection
        super().data_received(data)
        # a read that ended a head or a message is not counted here: it may be mostly body
        if self.reading_head and not self.crossed:
            self.head_bytes += len(data)
            if self.head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse()

    def on_message_begin(self) -> None:
        self.parsed_bytes = 0
        super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + LINE_OVERHEAD)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.reading_head, self.crossed = False, True
        self._stop_head_timer()
        if self.limit_concurrency is not None and self.url.split(b"?", 1)[0] in PROBES:
            limit, self.limit_concurrency = self.limit_concurrency, None  # probes always answer
            try:
                super().on_headers_complete()
            finally:
                self.limit_concurrency = limit
            return
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head, self.head_bytes, self.crossed = True, 0, True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP/1.1, as JSON like every other error."""
        if not self.refused:  # a refused head stops the parser, which lands here too
            self._answer(400, "Bad Request", "request", f"not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _count(self, size: int) -> None:
        self.parsed_bytes += size
        if self.parsed_bytes > self.max_head_bytes and not self.refused:
            self._refuse()
            raise HeadTooLarge  # httptools stops parsing; uvicorn takes it for a parser error

    def _refuse(self) -> None:
        message = (
            f"the request line and headers are more than the limit of {self.max_head_bytes} "
            "bytes (VAE_MAX_HEADER_BYTES)"
        )
        self._answer(431, "Request Header Fields Too Large", "headers", message)

    def _start_head_timer(self) -> None:
        self.head_timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if not self.reading_head or self.transport.is_closing():
            return
        if self.head_bytes or self.parsed_bytes:
            message = f"the request line and headers did not arrive within {self.head_timeout:g} s"
            self._answer(408, "Request Timeout", "headers", message + " (VAE_HEAD_TIMEOUT_SECONDS)")
        else:  # a connection that never said anything gets no answer
            self.refused = True
            self.transport.close()

    def _answer(self, status: int, reason: str, field: str, message: str) -> None:
        self.refused = True
        body = json.dumps({"detail": f"{field}: {message}", "field": field}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()
