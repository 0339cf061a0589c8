"""uvicorn's httptools protocol with a limit on the size of a request's head (line and headers).

httptools has no such limit of its own: a request with a 1 MiB header, or 20,000 headers, was read
whole and answered 200 (measured), so one client could make a worker buffer headers without end.
Here the head's bytes are counted as they arrive and a head over ``VAE_MAX_HEADER_BYTES`` is answered
431 and the connection closed, before more of it is buffered than one more read.

The limit travels in uvicorn's own setting for it, ``h11_max_incomplete_event_size`` (the same bound
for its pure-Python parser), so the configuration stays picklable for worker processes.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEAD_BYTES = 16384


class BoundedHeadProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = self.config.h11_max_incomplete_event_size or DEFAULT_HEAD_BYTES
        self.head_bytes = 0  # of the request head being read
        self.reading_head = True
        self.crossed = False  # a head or a message ended within the current read

    def data_received(self, data: bytes) -> None:
        self.crossed = False
        super().data_received(data)
        # a read that ended a head or a message is not counted: it may be mostly body
        if self.reading_head and not self.crossed:
            self.head_bytes += len(data)
            if self.head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self._refuse()

    def on_headers_complete(self) -> None:
        self.reading_head, self.crossed = False, True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.reading_head, self.head_bytes, self.crossed = True, 0, True
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes that are not HTTP/1.1, as JSON like every other error."""
        self._answer(400, "Bad Request", "request", f"not valid HTTP/1.1 ({msg.rstrip('.')})")

    def _refuse(self) -> None:
        message = (
            f"the request line and headers are more than the limit of {self.max_head_bytes} "
            "bytes (VAE_MAX_HEADER_BYTES)"
        )
        self._answer(431, "Request Header Fields Too Large", "headers", message)

    def _answer(self, status: int, reason: str, field: str, message: str) -> None:
        body = json.dumps({"detail": f"{field}: {message}", "field": field}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        self.transport.write(head + body)
        self.transport.close()
