"""POST /decode, /sample and /interpolate: latents in, images out."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from service.api.bodies import media_type, model_names, read_json, request_body
from service.api.deps import engine_of, registry_of, select_model
from service.api.errors import documented
from service.api.npy import NPY, read_npy
from service.api.render import render_images
from service.api.routing import DirectRoute
from service.api.schemas import (
    DecodeRequest,
    Endpoint,
    ImagesResponse,
    InterpolateRequest,
    InterpolateResponse,
    LatentEnd,
    SampleRequest,
    SampleResponse,
)
from service.core.inputs import Upload, b64decode
from service.core.latents import check_latents, latent_rows
from service.core.model import Model

router = APIRouter(tags=["images"], route_class=DirectRoute)
IMAGE_RESPONSES: dict[int | str, dict[str, Any]] = documented(400, 401, 404, 408, 413, 415, 422, 503) | {
    200: {
        "content": {"image/png": {}, NPY: {"schema": {"type": "string", "format": "binary"}}},
        "description": "JSON by default; one PNG (a grid when several) with Accept: image/png; "
        "x_mean [N, C, H, W] float32 as .npy with Accept: application/x-npy",
    }
}
NPY_LATENTS = {
    NPY: {
        "schema": {"type": "string", "format": "binary"},
        "description": "z [N, D] as a .npy float array; model and version in the query string",
    }
}


async def _latents(request: Request) -> tuple[Model, np.ndarray, str]:
    """/decode's model, its latents and the output format, from a .npy or a JSON body."""
    max_rows = engine_of(request).limits.max_images
    if media_type(request) == NPY:
        model = select_model(request, *model_names(request.query_params))
        return model, check_latents(read_npy(await request.body(), "z"), model.latent_dim, max_rows), "png"
    # room for the most latents allowed, of the widest model served, at 64 characters a number
    most = max_rows * registry_of(request).catalog.max_latent_dim * 64 + 4096
    body = await read_json(request, DecodeRequest, max_bytes=most)
    model = select_model(request, body.model, body.version)
    return model, latent_rows(body.z, model.latent_dim, max_rows), body.format


@router.post(
    "/decode",
    response_model=ImagesResponse,
    responses=IMAGE_RESPONSES,
    openapi_extra=request_body(DecodeRequest, **NPY_LATENTS),
    summary="Decode latents to images",
)
async def decode(request: Request) -> Response:
    model, z, fmt = await _latents(request)
    result = await engine_of(request).decode(model, z)
    return render_images(request, result.x_mean, fmt, {"model": model.name, "version": model.version})


@router.post(
    "/sample",
    response_model=SampleResponse,
    responses=IMAGE_RESPONSES,
    openapi_extra=request_body(SampleRequest),
    summary="Sample images from the prior",
)
async def sample(request: Request) -> Response:
    body = await read_json(request, SampleRequest)
    model = select_model(request, body.model, body.version)
    result = await engine_of(request).sample(model, body.n, body.seed, body.temperature)
    fields = {"model": model.name, "version": model.version, "z": result.z, "seed": result.seed}
    return render_images(request, result.x_mean, body.format, fields)


def _end(end: Endpoint, field: str, model: Model) -> np.ndarray | Upload:
    if isinstance(end, LatentEnd):
        return latent_rows([end.z], model.latent_dim, 1, f"{field}.z")[0]
    return Upload(b64decode(end.image, f"{field}.image"), f"{field}.image")


@router.post(
    "/interpolate",
    response_model=InterpolateResponse,
    responses=IMAGE_RESPONSES,
    openapi_extra=request_body(InterpolateRequest),
    summary="Images along a path between two latents or two images",
)
async def interpolate(request: Request) -> Response:
    body = await read_json(request, InterpolateRequest)
    model = select_model(request, body.model, body.version)
    start, end = _end(body.start, "start", model), _end(body.end, "end", model)
    result = await engine_of(request).interpolate(model, start, end, body.steps, body.method)
    fields = {"model": model.name, "version": model.version, "z": result.z}
    return render_images(request, result.x_mean, body.format, fields)
