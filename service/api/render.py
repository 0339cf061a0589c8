"""Turning decoder output into a response, by the request's Accept header: JSON (base64 PNGs or
arrays), one PNG, or the .npy array."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from common.images import grid, png_bytes, to_uint8
from service.api.npy import NPY, npy_bytes


class NumpyJSONResponse(JSONResponse):
    """JSON through orjson, which writes numpy arrays directly (float32 at their shortest form)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def accepted(request: Request) -> str:
    """``npy``, ``png`` or ``json``: what the client asked for, JSON unless it asked otherwise."""
    accept = request.headers.get("accept", "")
    if NPY in accept:
        return "npy"
    if "image/png" in accept and "application/json" not in accept:
        return "png"
    return "json"


def png_base64(request: Request, x: np.ndarray) -> list[str]:
    """x [N, C, H, W] in [0, 1] -> one base64 PNG per image."""
    level = request.app.state.settings.png_compress_level
    return [base64.b64encode(png_bytes(img, level)).decode() for img in to_uint8(x)]


def image_fields(x_mean: np.ndarray, fmt: str, compress_level: int) -> dict[str, Any]:
    if fmt == "array":
        return {"arrays": np.ascontiguousarray(x_mean)}
    return {"images": [base64.b64encode(png_bytes(img, compress_level)).decode() for img in to_uint8(x_mean)]}


def png_response(x_mean: np.ndarray, compress_level: int) -> Response:
    """One PNG: the image itself, or a grid when there are several."""
    images = to_uint8(x_mean)
    picture = images[0] if len(images) == 1 else grid(images, pad=2, fill=128)
    return Response(png_bytes(picture, compress_level), media_type="image/png")


def render_images(request: Request, x_mean: np.ndarray, fmt: str, fields: dict[str, Any]) -> Response:
    """``fields`` (model, version, seed, z ...) go into the JSON; with .npy, the scalars become
    ``X-Model``, ``X-Version`` and ``X-Seed`` headers and the body is x_mean [N, C, H, W] float32."""
    kind = accepted(request)
    compress_level = request.app.state.settings.png_compress_level
    if kind == "npy":
        scalars = {k: v for k, v in fields.items() if k in ("model", "version", "seed")}
        headers = {f"X-{key.capitalize()}": str(value) for key, value in scalars.items()}
        return Response(npy_bytes(x_mean), media_type=NPY, headers=headers)
    if kind == "png":
        return png_response(x_mean, compress_level)
    return NumpyJSONResponse(fields | image_fields(x_mean, fmt, compress_level))
