"""Who may call the service: bearer tokens from ``VAE_API_TOKENS`` and/or ``VAE_API_TOKENS_FILE``.

When there are none the API is open (the gateway's job, as in the shipped compose file). Probes
(/healthz, /readyz and the Open Inference Protocol's /v2/health/*) never need a token, so an
orchestrator can check a replica without one; nor do the web page and its static files; /admin/
checks its own.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.errors import error_response
from service.core.errors import Unauthorized
from service.settings import Settings

# the web page and its files hold no secret, and a browser cannot send a token when it opens a
# page: the page asks for one and sends it with every API call
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/"})
ADMIN_PREFIX = "/admin/"
STATIC_PREFIX = "/static/"


class TokenError(ValueError):
    """The token settings cannot be used; raised at start-up so the service never runs open by mistake."""


def read_tokens(settings: Settings) -> list[str]:
    """Every configured API token: comma-separated in the variable, one per line in the file. Tokens
    that were configured but hold none (``VAE_API_TOKENS=,``) stop start-up: never run open by mistake."""
    given = settings.api_tokens.get_secret_value() if settings.api_tokens is not None else None
    tokens = given.split(",") if given else []
    if settings.api_tokens_file is not None:
        path = Path(settings.api_tokens_file)
        try:
            lines = path.read_text().splitlines()
        except OSError as e:
            raise TokenError(f"VAE_API_TOKENS_FILE {path} cannot be read: {e.strerror}") from e
        tokens += [line for line in lines if not line.lstrip().startswith("#")]
        if not any(t.strip() for t in tokens):
            raise TokenError(f"VAE_API_TOKENS_FILE {path} holds no token")
    tokens = [t.strip() for t in tokens if t.strip()]
    if given is not None and not tokens:
        raise TokenError("VAE_API_TOKENS is set but holds no token; unset it to run without tokens")
    return tokens


def bearer(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The token of the request's one ``Authorization: Bearer`` header; None without one, or with
    several (which of two a proxy and the service would each believe is anyone's guess)."""
    values = [v for k, v in headers if k == b"authorization"]
    if len(values) != 1:
        return None
    scheme, _, token = values[0].partition(b" ")
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
    """401 for requests without one of the tokens, except probes and /admin/."""

    def __init__(self, app: ASGIApp, tokens: list[str]) -> None:
        self.app = app
        self.check = TokenCheck(tokens)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.check:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = scope["headers"]
        if (
            path in OPEN_PATHS
            or path.startswith((ADMIN_PREFIX, STATIC_PREFIX))
            or self.check.allows(bearer(headers))
        ):
            await self.app(scope, receive, send)
            return
        given = sum(k == b"authorization" for k, _ in headers)
        message = {0: "send a bearer token", 1: "the bearer token is not valid"}.get(
            given, "send one Authorization header, not several"
        )
        await error_response(Unauthorized("authorization", message), path)(scope, receive, send)
