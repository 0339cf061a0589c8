"""Errors as HTTP responses: one handler table for the core's error tree, schema violations and bugs.

The native API answers ``{"detail": "<field>: <message>", "field": "<field>"}``; the Open Inference
Protocol (paths under /v2/) has ``{"error": ..., "field": ...}``, as its clients expect.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from service.api.schemas import ErrorResponse
from service.core.errors import ServiceError

log = logging.getLogger(__name__)

DESCRIPTIONS = {
    400: "malformed body or unreadable image",
    401: "missing or wrong bearer token (when tokens are configured)",
    404: "unknown model or version",
    408: "the body did not arrive within the request timeout",
    413: "body or one image over its limit",
    415: "a content type this endpoint does not read",
    422: "invalid values; the field and the limit are named",
    503: "no model loaded, too busy, or the request timed out; retry after Retry-After seconds",
}


def documented(*codes: int, model: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the given error statuses, all with the same body."""
    return {code: {"model": model, "description": DESCRIPTIONS[code]} for code in codes}


def error_key(path: str) -> str:
    return "error" if path.startswith("/v2/") else "detail"


def error_response(exc: ServiceError, path: str = "") -> JSONResponse:
    body = {error_key(path): exc.detail, "field": exc.field}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return error_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 list without echoing the input back (which may be huge or hostile)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    field = ".".join(str(p) for p in errors[0]["loc"] if p != "body") if errors else "body"
    return JSONResponse({"detail": errors, "field": field or "body"}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug (uvicorn logs its traceback), while the client learns only the request id."""
    request_id = request.scope.get("state", {}).get("request_id", "")
    log.error("unhandled error in %s %s (request_id=%s)", request.method, request.url.path, request_id)
    return JSONResponse({"detail": f"internal error; request_id {request_id}"}, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
