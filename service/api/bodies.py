"""Reading request bodies: JSON validated by pydantic straight from the bytes, multipart uploads,
``model``/``version`` from form fields or the query string, and OpenAPI entries for such bodies.

FastAPI's body parameters parse JSON with the standard library and then validate the Python
objects, which cost 30 us more per request than pydantic validating the bytes (in-process, measured
against the same model); at thousands of requests a second that is a tenth of the budget.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

import multipart
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from common.manifest import SAFE_NAME
from service.core.errors import BadRequest, PayloadTooLarge, Unprocessable, UnsupportedMediaType
from service.core.inputs import Upload

Body = TypeVar("Body", bound=BaseModel)
JSON = "application/json"
MULTIPART = "multipart/form-data"
MAX_FIELDS = 16  # text fields of a multipart body (model, version, options): more is not a request of ours


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    """``schema`` with every ``$ref`` to its own ``$defs`` replaced by the definition itself."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            return _inline(definitions[schema["$ref"].rsplit("/", 1)[-1]], definitions)
        return {k: _inline(v, definitions) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, definitions) for v in schema]
    return schema


def request_body(model: type[BaseModel], **other_content: dict[str, Any]) -> dict[str, Any]:
    """``openapi_extra`` of a route whose JSON body is ``model`` (and, optionally, other media types):
    the body is read by the route itself, so its schema is written out here, self-contained."""
    schema = model.model_json_schema()
    schema = _inline(schema, schema.pop("$defs", {}))
    content = {JSON: {"schema": schema}} | other_content
    return {"requestBody": {"required": True, "content": content}}


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def read_json(request: Request, model: type[Body], max_bytes: int | None = None) -> Body:
    """The body validated as ``model``; FastAPI's usual 422 when it does not validate.

    ``max_bytes``, when given, is checked before parsing: parsing builds a Python object per JSON
    number, 245 MiB and 0.36 s of the event loop for 13 MiB of latents (measured)."""
    if media_type(request) != JSON:
        raise UnsupportedMediaType("content-type", f"{media_type(request) or 'none'}; send {JSON}")
    body = await request.body()
    if max_bytes is not None and len(body) > max_bytes:
        raise PayloadTooLarge("body", f"{len(body)} bytes of JSON, more than the limit of {max_bytes} here")
    return validate_json(model, body)


def validate_json(model: type[Body], data: bytes | str) -> Body:
    try:
        return model.model_validate_json(data)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_input=False)) from e


def validate_fields(model: type[Body], fields: dict[str, Any]) -> Body:
    """Form fields are strings by nature: "true" and "7" convert here, unlike in JSON."""
    try:
        return model.model_validate(fields, strict=False)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_input=False)) from e


async def read_multipart(
    request: Request, max_files: int, max_file_bytes: int
) -> tuple[list[Upload], dict[str, str]]:
    """The ``files`` of a multipart body as uploads, and its other (text) fields."""
    body = await request.body()  # bounded by the admission layer's body limit and memory budget
    parts = parse_multipart(body, request.headers.get("content-type", ""), max_files, max_file_bytes)
    del body  # the parts are copies: the body is not held while they are decoded
    files = [data for name, filename, data in parts if name == "files" and filename is not None]
    fields = {name: data.decode("utf-8", "replace") for name, filename, data in parts if filename is None}
    if not files:
        raise Unprocessable("files", "at least one image file is required")
    return [Upload(data, f"files[{i}]") for i, data in enumerate(files)], fields


def parse_multipart(
    body: bytes, content_type: str, max_files: int, max_field_bytes: int
) -> list[tuple[str, str | None, bytes]]:
    """(name, filename or None for a text field, bytes) of each part, by the ``multipart`` library's
    push parser in one pass over the body (it is in memory already).

    Starlette's form parser, made for streaming, puts each file in a SpooledTemporaryFile behind an
    UploadFile, over python-multipart's state machine: /encode of 16 PNG uploads cost 0.5 ms a
    request more that way than the same images as JSON base64 (`make bench-compare`, 32
    connections). Parsing the same 16-part body takes 231 us with python-multipart's parser and
    66 us with this one (in-process)."""
    _, options = multipart.parse_options_header(content_type)
    boundary = options.get("boundary")
    if not boundary:
        raise BadRequest("body", "not valid multipart/form-data: the content-type names no boundary")
    parts: list[tuple[str, str | None, bytes]] = []
    files = 0
    chunks: list[bytes] = []  # of the part being read
    segment: multipart.MultipartSegment | None = None
    try:
        parser = multipart.PushMultipartParser(boundary, max_segment_count=max_files + MAX_FIELDS)
        for event in (*parser.parse(body), *parser.parse(b"")):
            if isinstance(event, multipart.MultipartSegment):
                segment = event
                if segment.filename is not None:
                    files += 1
                    if files > max_files:
                        raise BadRequest("body", f"Too many files. Maximum number of files is {max_files}.")
                elif len(parts) - files + 1 > MAX_FIELDS:
                    raise BadRequest("body", f"at most {MAX_FIELDS} text fields")
            elif event:
                chunks.append(event)
            elif segment is not None:  # None: the end of the segment
                data = b"".join(chunks)
                chunks.clear()
                if segment.filename is None and len(data) > max_field_bytes:
                    raise BadRequest(
                        segment.name or "body", f"a text field of more than {max_field_bytes} bytes"
                    )
                parts.append((segment.name or "", segment.filename, data))
        parser.close(check_complete=True)
    except multipart.MultipartError as e:
        raise BadRequest("body", f"not valid multipart/form-data: {e}") from e
    return parts


def model_names(values: Mapping[str, str]) -> tuple[str | None, str | None]:
    """``model`` and ``version`` from form fields or the query string, for bodies that are not JSON."""
    for key in ("model", "version"):
        value = values.get(key)
        if value is not None and not re.fullmatch(SAFE_NAME, value):
            raise Unprocessable(key, f"{value[:80]!r} must match {SAFE_NAME}")
    return values.get("model"), values.get("version")
