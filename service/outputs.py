"""Turning decoder output into a response: base64 PNGs or raw arrays in JSON, or one PNG."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import orjson
from fastapi import Request, Response
from fastapi.responses import JSONResponse

from common.images import grid, png_bytes, to_uint8


class NumpyJSONResponse(JSONResponse):
    """JSON through orjson, which writes numpy arrays directly (float32 at their shortest form)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def wants_png(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "image/png" in accept and "application/json" not in accept


def image_fields(x_mean: np.ndarray, fmt: str, compress_level: int) -> dict[str, Any]:
    if fmt == "array":
        return {"arrays": np.ascontiguousarray(x_mean)}
    return {"images": [base64.b64encode(png_bytes(img, compress_level)).decode() for img in to_uint8(x_mean)]}


def png_response(x_mean: np.ndarray, compress_level: int) -> Response:
    """One PNG: the image itself, or a grid when there are several."""
    images = to_uint8(x_mean)
    picture = images[0] if len(images) == 1 else grid(images, pad=2, fill=128)
    return Response(png_bytes(picture, compress_level), media_type="image/png")


def render_images(
    request: Request, x_mean: np.ndarray, fmt: str, compress_level: int, fields: dict[str, Any]
) -> Response:
    if wants_png(request):
        return png_response(x_mean, compress_level)
    return NumpyJSONResponse(fields | image_fields(x_mean, fmt, compress_level))
