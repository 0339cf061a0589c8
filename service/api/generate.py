"""POST /decode, /sample and /interpolate: latents in, images out."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from service.api.bodies import media_type, model_names, read_json, request_body
from service.api.deps import repository_of, select_model, settings_of
from service.errors import Unprocessable, error_responses
from service.inference import (
    b64decode,
    check_image_bytes,
    image_inputs,
    interpolate,
    latent_array,
    latents,
    sample_prior,
)
from service.metrics import IMAGES, child
from service.npy import NPY, read_npy
from service.outputs import render_images
from service.repository import LoadedModel
from service.schemas import (
    DecodeRequest,
    Endpoint,
    ImagesResponse,
    InterpolateRequest,
    InterpolateResponse,
    LatentEnd,
    SampleRequest,
    SampleResponse,
)
from service.settings import Settings

router = APIRouter(tags=["images"])
ERRORS = error_responses(400, 401, 404, 408, 413, 415, 422, 503)
IMAGE_TYPES: dict[int | str, dict[str, Any]] = ERRORS | {
    200: {
        "content": {
            "image/png": {},
            NPY: {"schema": {"type": "string", "format": "binary"}},
        },
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


def _check_limit(field: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise Unprocessable(f"{field}: {value} is more than the limit of {limit} ({setting})")


async def _decode(endpoint: str, model: LoadedModel, z: np.ndarray) -> np.ndarray:
    x_mean = (await model.decoding(z))[0]
    child(IMAGES, endpoint, model.name, model.version).inc(len(z))
    return x_mean


@router.post(
    "/decode",
    response_model=ImagesResponse,
    responses=IMAGE_TYPES,
    openapi_extra=request_body(DecodeRequest, **NPY_LATENTS),
    summary="Decode latents to images",
)
async def decode(request: Request) -> Response:
    settings = settings_of(request)
    if media_type(request) == NPY:
        name, version = model_names(request.query_params)
        model = select_model(request, name, version)
        z = latent_array(read_npy(await request.body(), "z"), model.latent_dim, settings.max_images)
        fmt = "png"
    else:
        # room for the most latents allowed, of the widest model served, at 64 characters a number
        most = settings.max_images * repository_of(request).max_latent_dim * 64 + 4096
        body = await read_json(request, DecodeRequest, max_bytes=most)
        model = select_model(request, body.model, body.version)
        z = latents(body.z, model.latent_dim, settings.max_images)
        fmt = body.format
    x_mean = await _decode("/decode", model, z)
    fields = {"model": model.name, "version": model.version}
    return render_images(request, x_mean, fmt, settings.png_compress_level, fields)


@router.post(
    "/sample",
    response_model=SampleResponse,
    responses=IMAGE_TYPES,
    openapi_extra=request_body(SampleRequest),
    summary="Sample images from the prior",
)
async def sample(request: Request) -> Response:
    settings = settings_of(request)
    body = await read_json(request, SampleRequest)
    _check_limit("n", body.n, settings.max_n, "VAE_MAX_N")
    if body.temperature > settings.max_temperature:
        raise Unprocessable(
            f"temperature: {body.temperature} is more than the limit of {settings.max_temperature}"
        )
    model = select_model(request, body.model, body.version)
    seed = body.seed if body.seed is not None else secrets.randbits(63)
    z = sample_prior(body.n, model.latent_dim, seed, body.temperature)
    x_mean = await _decode("/sample", model, z)
    fields = {"model": model.name, "version": model.version, "z": z, "seed": seed}
    return render_images(request, x_mean, body.format, settings.png_compress_level, fields)


async def _endpoint_latent(end: Endpoint, field: str, model: LoadedModel, settings: Settings) -> np.ndarray:
    if isinstance(end, LatentEnd):
        return latents([end.z], model.latent_dim, 1, f"{field}.z")[0]
    data = b64decode(end.image, f"{field}.image")
    check_image_bytes(data, settings.max_image_bytes, f"{field}.image")
    x = await image_inputs([(data, f"{field}.image")], model.preprocessing)
    mu, _ = await model.encoding(x)
    return mu[0]


@router.post(
    "/interpolate",
    response_model=InterpolateResponse,
    responses=IMAGE_TYPES,
    openapi_extra=request_body(InterpolateRequest),
    summary="Images along a path between two latents or two images",
)
async def interpolate_route(request: Request) -> Response:
    settings = settings_of(request)
    body = await read_json(request, InterpolateRequest)
    _check_limit("steps", body.steps, settings.max_steps, "VAE_MAX_STEPS")
    model = select_model(request, body.model, body.version)
    start = await _endpoint_latent(body.start, "start", model, settings)
    end = await _endpoint_latent(body.end, "end", model, settings)
    path = interpolate(start, end, body.steps, body.method)
    x_mean = await _decode("/interpolate", model, path)
    fields = {"model": model.name, "version": model.version, "z": path}
    return render_images(request, x_mean, body.format, settings.png_compress_level, fields)
