"""POST /encode: images in (multipart files or JSON base64), mu and sigma out."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.bodies import (
    JSON,
    MULTIPART,
    media_type,
    model_names,
    read_multipart,
    request_body,
    validate_fields,
    validate_json,
)
from service.api.deps import engine_of, select_model
from service.api.errors import documented
from service.api.render import NumpyJSONResponse
from service.api.schemas import EncodeJSON, EncodeResponse
from service.core.errors import UnsupportedMediaType
from service.core.inputs import Upload, b64decode

router = APIRouter(tags=["latents"])

MULTIPART_BODY = {
    MULTIPART: {
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


async def read_uploads(request: Request, model: type[EncodeJSON]) -> tuple[EncodeJSON, list[Upload]]:
    """The options and the uploads of /encode and /score, from either body they take."""
    engine = engine_of(request)
    kind = media_type(request)
    if kind == MULTIPART:
        uploads, fields = await read_multipart(
            request, engine.limits.max_images, engine.limits.max_image_bytes
        )
        model_names(fields)
        engine.check_count("files", len(uploads))
        return validate_fields(model, {"images": ["-"], **fields}), uploads
    if kind == JSON:
        data = await request.body()
        # every image is one JSON string, two quotes (base64 has none): counted before parsing, since
        # parsing millions of empty strings costs the event loop half a second (measured)
        engine.check_count("images", data.count(b'"') // 2 - 2 * len(model.model_fields))  # keys, names
        body = validate_json(model, data)
        engine.check_count("images", len(body.images))
        return body, [Upload(b64decode(s, f"images[{i}]"), f"images[{i}]") for i, s in enumerate(body.images)]
    raise UnsupportedMediaType("content-type", f"{kind or 'none'}; send {MULTIPART} or {JSON}")


@router.post(
    "/encode",
    response_model=EncodeResponse,
    responses=documented(400, 401, 404, 408, 413, 415, 422, 503),
    openapi_extra=request_body(EncodeJSON, **MULTIPART_BODY),
    summary="Encode images to the mean and standard deviation of q(z|x)",
)
async def encode(request: Request) -> NumpyJSONResponse:
    options, uploads = await read_uploads(request, EncodeJSON)
    model = select_model(request, options.model, options.version)
    result = await engine_of(request).encode(model, uploads, options.sample, options.seed)
    out = {"model": model.name, "version": model.version, "latent_dim": model.latent_dim}
    out |= {"mu": result.mu, "sigma": result.sigma}
    if result.z is not None:
        out |= {"z": result.z, "seed": result.seed}
    return NumpyJSONResponse(out)
