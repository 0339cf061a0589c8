"""The service's errors: each carries its HTTP status and the request field it is about, and is
raised where the problem is understood. One handler table (``service.api.errors``) turns them into
``{"detail": "<field>: <message>", "field": "<field>"}`` responses.

    ServiceError (500)
    +-- BadRequest (400)             malformed body, unreadable image
    |   +-- Unprocessable (422)      well-formed but invalid: wrong latent length, non-finite numbers
    +-- NotFound (404)               unknown model or version
    +-- PayloadTooLarge (413)        body or image over its limit
    +-- UnsupportedMediaType (415)   a content type the endpoint does not read
    +-- Unauthorized (401)           missing or wrong bearer token; carries WWW-Authenticate
    +-- RequestTimeout (408)         the body did not arrive within the request timeout
    +-- Overloaded (503)             too many requests, a full queue or a timed-out request; Retry-After
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    status_code = 500
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field  # which part of the request: "files[2]", "z", "body", "authorization" ...
        self.message = message

    @property
    def detail(self) -> str:
        return f"{self.field}: {self.message}"


class BadRequest(ServiceError):
    status_code = 400


class Unprocessable(BadRequest):
    status_code = 422


class NotFound(ServiceError):
    status_code = 404


class PayloadTooLarge(ServiceError):
    status_code = 413


class UnsupportedMediaType(ServiceError):
    status_code = 415


class Unauthorized(ServiceError):
    status_code = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="vae-service"'}


class RequestTimeout(ServiceError):
    status_code = 408
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


class Overloaded(ServiceError):
    status_code = 503
    # a queue drains in milliseconds, so a second later is a fair time to retry
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


def check_limit(field: str, value: int | float, limit: int | float, setting: str) -> None:
    """422 naming the field, the limit and the setting that sets it, when ``value`` is over it."""
    if value > limit:
        raise Unprocessable(field, f"{value} is more than the limit of {limit} ({setting})")
