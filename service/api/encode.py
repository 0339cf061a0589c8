"""POST /encode: images in (multipart files or JSON base64), mu and sigma out."""

from __future__ import annotations

import secrets

import numpy as np
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from service.api.bodies import JSON, media_type, model_names, read_json, request_body
from service.api.deps import select_model, settings_of
from service.errors import BadRequest, Unprocessable, UnsupportedMediaType, error_responses
from service.inference import b64decode, check_image_bytes, image_inputs
from service.metrics import IMAGES, child
from service.outputs import NumpyJSONResponse
from service.schemas import EncodeJSON, EncodeResponse
from service.settings import Settings

router = APIRouter(tags=["latents"])

MULTIPART = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                "model": {"type": "string"},
                "version": {"type": "string"},
                "sample": {"type": "boolean"},
                "seed": {"type": "integer", "minimum": 0},
            },
        }
    }
}


async def _multipart(request: Request, settings: Settings) -> tuple[EncodeJSON, list[bytes]]:
    limits = {"max_files": settings.max_images, "max_fields": 16, "max_part_size": settings.max_image_bytes}
    try:
        async with request.form(**limits) as form:  # closes the uploads' temporary files on exit
            files = [await f.read() for f in form.getlist("files") if isinstance(f, UploadFile)]
            fields = {k: v for k, v in form.items() if k != "files" and isinstance(v, str)}
    except HTTPException as e:  # Starlette's word for a body python-multipart could not parse
        raise BadRequest(f"body: not valid multipart/form-data: {e.detail}") from e
    model_names(fields)
    try:
        # form fields are strings by nature: "true" and "7" convert here, unlike in JSON
        options = EncodeJSON.model_validate({"images": ["-"], **fields}, strict=False)
    except ValidationError as e:
        raise RequestValidationError(e.errors(include_url=False, include_input=False)) from e
    if not files:
        raise Unprocessable("files: at least one image file is required")
    return options, files


async def _json(request: Request) -> tuple[EncodeJSON, list[bytes]]:
    body = await read_json(request, EncodeJSON)
    return body, [b64decode(s, f"images[{i}]") for i, s in enumerate(body.images)]


@router.post(
    "/encode",
    response_model=EncodeResponse,
    responses=error_responses(400, 401, 404, 408, 413, 415, 422, 503),
    openapi_extra=request_body(EncodeJSON, **MULTIPART),
    summary="Encode images to the mean and standard deviation of q(z|x)",
)
async def encode(request: Request) -> NumpyJSONResponse:
    settings = settings_of(request)
    content_type = media_type(request)
    if content_type == "multipart/form-data":
        options, files = await _multipart(request, settings)
        field = "files"
    elif content_type == JSON:
        options, files = await _json(request)
        field = "images"
    else:
        raise UnsupportedMediaType(
            f"content-type: {content_type or 'none'}; send multipart/form-data or {JSON}"
        )
    if len(files) > settings.max_images:
        raise Unprocessable(
            f"{field}: {len(files)} images, more than the limit of {settings.max_images} per request"
        )
    model = select_model(request, options.model, options.version)
    for i, data in enumerate(files):
        check_image_bytes(data, settings.max_image_bytes, f"{field}[{i}]")

    x = await image_inputs([(data, f"{field}[{i}]") for i, data in enumerate(files)], model.preprocessing)
    mu, logvar = await model.encoding(x)
    sigma = np.exp(0.5 * logvar)
    out = {"model": model.name, "version": model.version, "latent_dim": model.latent_dim, "mu": mu}
    out["sigma"] = sigma
    if options.sample:
        seed = options.seed if options.seed is not None else secrets.randbits(63)
        eps = np.random.default_rng(seed).standard_normal(mu.shape, dtype=np.float32)
        out |= {"z": mu + sigma * eps, "seed": seed}
    child(IMAGES, "/encode", model.name, model.version).inc(len(files))
    return NumpyJSONResponse(out)
