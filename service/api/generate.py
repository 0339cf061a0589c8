"""POST /decode, /sample and /interpolate: latents in, images out."""

from __future__ import annotations

import secrets
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from service.api.deps import RepositoryDep, SettingsDep, select_model
from service.errors import Unprocessable
from service.inference import b64decode, check_image_bytes, image_input, interpolate, latents, sample_prior
from service.metrics import IMAGES
from service.outputs import render_images
from service.repository import LoadedModel
from service.schemas import (
    DecodeRequest,
    Endpoint,
    ImagesResponse,
    InterpolateRequest,
    InterpolateResponse,
    SampleRequest,
    SampleResponse,
)
from service.settings import Settings

router = APIRouter(tags=["images"])
PNG: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"image/png": {}},
        "description": "JSON, or one PNG (a grid when several) with Accept: image/png",
    }
}


def _check_limit(field: str, value: int, limit: int, setting: str) -> None:
    if value > limit:
        raise Unprocessable(f"{field}: {value} is more than the limit of {limit} ({setting})")


async def _decode(endpoint: str, model: LoadedModel, z: np.ndarray) -> np.ndarray:
    x_mean = await run_in_threadpool(model.decode, z)
    IMAGES.labels(endpoint, model.name, model.version).inc(len(z))
    return x_mean


@router.post("/decode", response_model=ImagesResponse, responses=PNG, summary="Decode latents to images")
async def decode(
    body: DecodeRequest, request: Request, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    model = select_model(request, repository, body.model, body.version)
    z = latents(body.z, model.latent_dim, settings.max_images)
    x_mean = await _decode("/decode", model, z)
    fields = {"model": model.name, "version": model.version}
    return render_images(request, x_mean, body.format, settings.png_compress_level, fields)


@router.post("/sample", response_model=SampleResponse, responses=PNG, summary="Sample images from the prior")
async def sample(
    body: SampleRequest, request: Request, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    _check_limit("n", body.n, settings.max_n, "VAE_MAX_N")
    if body.temperature > settings.max_temperature:
        raise Unprocessable(
            f"temperature: {body.temperature} is more than the limit of {settings.max_temperature}"
        )
    model = select_model(request, repository, body.model, body.version)
    seed = body.seed if body.seed is not None else secrets.randbits(63)
    z = sample_prior(body.n, model.latent_dim, seed, body.temperature)
    x_mean = await _decode("/sample", model, z)
    fields = {"model": model.name, "version": model.version, "z": z, "seed": seed}
    return render_images(request, x_mean, body.format, settings.png_compress_level, fields)


async def _endpoint_latent(end: Endpoint, field: str, model: LoadedModel, settings: Settings) -> np.ndarray:
    if end.z is not None:
        return latents([end.z], model.latent_dim, 1, f"{field}.z")[0]
    assert end.image is not None
    data = b64decode(end.image, f"{field}.image")
    check_image_bytes(data, settings.max_image_bytes, f"{field}.image")

    def encode() -> np.ndarray:
        x = image_input(data, model.preprocessing, f"{field}.image")[None]
        return model.encode(x)[0][0]

    return await run_in_threadpool(encode)


@router.post(
    "/interpolate",
    response_model=InterpolateResponse,
    responses=PNG,
    summary="Images along a path between two latents or two images",
)
async def interpolate_route(
    body: InterpolateRequest, request: Request, repository: RepositoryDep, settings: SettingsDep
) -> Response:
    _check_limit("steps", body.steps, settings.max_steps, "VAE_MAX_STEPS")
    model = select_model(request, repository, body.model, body.version)
    start = await _endpoint_latent(body.start, "start", model, settings)
    end = await _endpoint_latent(body.end, "end", model, settings)
    path = interpolate(start, end, body.steps, body.method)
    x_mean = await _decode("/interpolate", model, path)
    fields = {"model": model.name, "version": model.version, "z": path}
    return render_images(request, x_mean, body.format, settings.png_compress_level, fields)
