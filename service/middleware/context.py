"""Request id and security headers on every response, errors and 401s included."""

from __future__ import annotations

import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# pages load their own scripts, styles and images from this origin, and nothing from anywhere else;
# the web page (/) sets no inline style, Swagger UI (/docs) does; images the page builds are data:
# (the API's PNGs) and blob: (the sample grid it offers as a download)
PAGE_CSP = {
    "/": b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    b"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "/docs": b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    b"frame-ancestors 'none'",
}
API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
SECURE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]


def secure_headers(path: str) -> list[tuple[bytes, bytes]]:
    page = PAGE_CSP.get(path)
    return [*SECURE_HEADERS, (b"content-security-policy", page) if page else API_CSP]


def header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = (header(scope, b"x-request-id") or b"").decode("latin-1")
        # random 128 bits as a uuid4 has them, without building a UUID object per request
        request_id = given if REQUEST_ID.match(given) else os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [*secure_headers(scope["path"]), (b"x-request-id", request_id.encode())]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
