"""Who may call the service, and the headers every response carries.

Bearer tokens come from ``VAE_API_TOKENS`` and/or ``VAE_API_TOKENS_FILE``; when there are none,
the API is open (the gateway's job, as in the shipped compose file). Probes (/healthz, /readyz and
the Open Inference Protocol's /v2/health/*) never need a token, so an orchestrator can check a
replica without one; /admin/ checks its own.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import Unauthorized, error_response
from service.settings import Settings

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
ADMIN_PREFIX = "/admin/"
# the interactive docs load their scripts and styles from a CDN, so a CSP of 'none' would blank them
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc"})
SECURE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
]
CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")


def secure_headers(path: str) -> list[tuple[bytes, bytes]]:
    return SECURE_HEADERS if path in DOCS_PATHS else [*SECURE_HEADERS, CSP]


class TokenError(ValueError):
    """The token settings cannot be used; raised at start-up so the service never runs open by mistake."""


def read_tokens(settings: Settings) -> list[str]:
    """Every configured API token: comma-separated in the variable, one per line in the file."""
    tokens = settings.api_tokens.get_secret_value().split(",") if settings.api_tokens else []
    if settings.api_tokens_file is not None:
        path = Path(settings.api_tokens_file)
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise TokenError(f"VAE_API_TOKENS_FILE {path} cannot be read: {e.strerror}") from e
        tokens += [line for line in lines if not line.lstrip().startswith("#")]
        if not any(t.strip() for t in tokens):
            raise TokenError(f"VAE_API_TOKENS_FILE {path} holds no token")
    return [t.strip() for t in tokens if t.strip()]


def bearer(headers: dict[bytes, bytes]) -> bytes | None:
    scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
    return token.strip() if scheme.lower() == b"bearer" and token.strip() else None


class TokenCheck:
    """Compares a presented token with every known one in constant time: the digests have one length,
    and every token is compared whether or not an earlier one matched."""

    def __init__(self, tokens: list[str]) -> None:
        self._digests = [hashlib.sha256(t.encode()).digest() for t in tokens]

    def __bool__(self) -> bool:
        return bool(self._digests)

    def allows(self, token: bytes | None) -> bool:
        presented = hashlib.sha256(token or b"").digest()
        matched = False
        for digest in self._digests:
            matched |= hmac.compare_digest(presented, digest)
        return matched and token is not None


class BearerAuth:
    """ASGI middleware: 401 for requests without one of the tokens, except probes and /admin/."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.check = TokenCheck(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.check:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope["headers"])
        if path in OPEN_PATHS or path.startswith(ADMIN_PREFIX) or self.check.allows(bearer(headers)):
            await self.app(scope, receive, send)
            return
        given = b"authorization" in headers
        detail = f"authorization: {'the bearer token is not valid' if given else 'send a bearer token'}"
        await error_response(Unauthorized(detail), path)(scope, receive, send)
