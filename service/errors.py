"""The service's errors, each carrying its HTTP status; one handler turns them into JSON.

    ServiceError (500)
    +-- BadRequest (400)             malformed body, unreadable image
    |   +-- Unprocessable (422)      well-formed but invalid: wrong latent length, non-finite numbers
    +-- NotFound (404)               unknown model or version
    +-- PayloadTooLarge (413)        body or image over its limit
    +-- UnsupportedMediaType (415)   a content type the endpoint does not read
    +-- NotReady (503)               no model loaded
    +-- Overloaded (503)             the model's queue is full; carries Retry-After

Every client error names the field and, where one applies, the limit.
"""

from __future__ import annotations

from typing import ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class ServiceError(Exception):
    status_code = 500
    headers: ClassVar[dict[str, str] | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


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


class NotReady(ServiceError):
    status_code = 503


class Overloaded(ServiceError):
    status_code = 503
    # a queue drains in milliseconds, so a second later is a fair time to retry
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
