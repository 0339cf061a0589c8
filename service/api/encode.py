"""POST /encode: images in (multipart files or JSON base64), mu and sigma out."""

from __future__ import annotations

from typing import Any, TypeVar

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
from service.api.render import NumpyJSONResponse, png_base64
from service.api.routing import DirectRoute
from service.api.schemas import EncodeJSON, EncodeResponse, ScoreJSON, ScoreResponse, UploadsJSON
from service.core.errors import UnsupportedMediaType
from service.core.inputs import Upload, b64decode

router = APIRouter(tags=["latents"], route_class=DirectRoute)
Uploads = TypeVar("Uploads", bound=UploadsJSON)


def multipart_body(model: type[UploadsJSON]) -> dict[str, Any]:
    """The multipart/form-data form of a JSON body of uploads: ``files`` instead of ``images``, and
    its other fields as form fields."""
    fields = {k: v for k, v in model.model_json_schema()["properties"].items() if k != "images"}
    files = {"type": "array", "items": {"type": "string", "format": "binary"}}
    schema = {"type": "object", "required": ["files"], "properties": {"files": files, **fields}}
    return {MULTIPART: {"schema": schema}}


async def read_uploads(request: Request, model: type[Uploads]) -> tuple[Uploads, list[Upload]]:
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
    openapi_extra=request_body(EncodeJSON, **multipart_body(EncodeJSON)),
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
    if options.return_inputs:
        out["inputs"] = png_base64(request, result.x)
    return NumpyJSONResponse(out)


@router.post(
    "/score",
    response_model=ScoreResponse,
    responses=documented(400, 401, 404, 408, 413, 415, 422, 503),
    openapi_extra=request_body(ScoreJSON, **multipart_body(ScoreJSON)),
    summary="How likely is each image under the model: log p(x) by importance sampling, and its percentile",
)
async def score(request: Request) -> NumpyJSONResponse:
    options, uploads = await read_uploads(request, ScoreJSON)
    model = select_model(request, options.model, options.version)
    result = await engine_of(request).score(model, uploads, options.k, options.seed)
    s = result.scores
    out = {"model": model.name, "version": model.version, "k": result.k, "seed": result.seed}
    out |= {
        "log_px": s.log_px,
        "elbo": s.elbo,
        "bits_per_dim": s.bits_per_dim,
        "percentile": result.percentile,
    }
    return NumpyJSONResponse(out)
