"""The service's errors, each carrying its HTTP status; one handler turns them into JSON.

    ServiceError (500)
    +-- BadRequest (400)             malformed body, unreadable image
    |   +-- Unprocessable (422)      well-formed but invalid: wrong latent length, non-finite numbers
    +-- NotFound (404)               unknown model or version
    +-- PayloadTooLarge (413)        body or image over its limit
    +-- UnsupportedMediaType (415)   a content type the endpoint does not read
    +-- Unauthorized (401)           missing or wrong bearer token; carries WWW-Authenticate
    +-- RequestTimeout (408)         the body did not arrive within the request timeout
    +-- NotReady (503)               no model loaded
    +-- Overloaded (503)             the model's queue is full or the request timed out; Retry-After

Every client error names the field and, where one applies, the limit.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.schemas import ErrorResponse

log = logging.getLogger(__name__)


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


class Unauthorized(ServiceError):
    status_code = 401
    headers: ClassVar[dict[str, str] | None] = {"WWW-Authenticate": 'Bearer realm="vae-service"'}


class RequestTimeout(ServiceError):
    status_code = 408
    headers: ClassVar[dict[str, str] | None] = {"Connection": "close"}


class NotReady(ServiceError):
    status_code = 503


class Overloaded(ServiceError):
    status_code = 503
    # a queue drains in milliseconds, so a second later is a fair time to retry
    headers: ClassVar[dict[str, str] | None] = {"Retry-After": "1"}


ERROR_DESCRIPTIONS = {
    400: "malformed body or unreadable image",
    401: "missing or wrong bearer token (when tokens are configured)",
    404: "unknown model or version",
    408: "the body did not arrive within the request timeout",
    413: "body or one image over its limit",
    415: "a content type this endpoint does not read",
    422: "invalid values; the field and the limit are named",
    503: "no model loaded, the queue is full or the request timed out; retry after Retry-After seconds",
}


def error_responses(*codes: int, model: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the given error statuses, all with the same body."""
    return {code: {"model": model, "description": ERROR_DESCRIPTIONS[code]} for code in codes}


def error_key(path: str) -> str:
    """The Open Inference Protocol has its errors as {"error": ...}; the native API as {"detail": ...}."""
    return "error" if path.startswith("/v2/") else "detail"


def error_response(exc: ServiceError, path: str = "") -> JSONResponse:
    return JSONResponse({error_key(path): exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc, request.url.path)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback here, while the client learns only the request id."""
    request_id = request.scope.get("state", {}).get("request_id", "")
    log.error("unhandled error in %s %s (request_id=%s)", request.method, request.url.path, request_id)
    return JSONResponse({"detail": f"internal error; request_id {request_id}"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(Exception, _unexpected)
