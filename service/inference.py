"""What the endpoints compute, free of HTTP: turning requests' numbers and bytes into arrays,
sampling the prior and walking between latents."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from fastapi.concurrency import run_in_threadpool
from PIL import Image

from common.preprocessing import ImageError, Preprocessing, decode_pixels, image_to_array, read_header
from service.errors import BadRequest, PayloadTooLarge, Unprocessable

FLOAT32_MAX = float(np.finfo(np.float32).max)
T = TypeVar("T")


def latents(rows: list[list[float]], latent_dim: int, max_rows: int, field: str = "z") -> np.ndarray:
    """Rows of a JSON request -> float32 [N, D], each row checked against the model's D."""
    if len(rows) > max_rows:
        raise Unprocessable(f"{field}: {len(rows)} latents, more than the limit of {max_rows} per request")
    for i, row in enumerate(rows):
        if len(row) != latent_dim:
            raise Unprocessable(
                f"{field}[{i}]: has {len(row)} numbers, the model's latent_dim is {latent_dim}"
            )
    return latent_array(np.asarray(rows, dtype=np.float64), latent_dim, max_rows, field)


def latent_array(z: np.ndarray, latent_dim: int, max_rows: int, field: str = "z") -> np.ndarray:
    """A float array [N, D] (from JSON or .npy) -> float32 [N, D], checked against the model."""
    if z.ndim != 2 or z.shape[1] != latent_dim or len(z) == 0:
        raise Unprocessable(f"{field}: shape {list(z.shape)}, expected [N, {latent_dim}] with N >= 1")
    if len(z) > max_rows:
        raise Unprocessable(f"{field}: {len(z)} latents, more than the limit of {max_rows} per request")
    if not (np.abs(z) <= FLOAT32_MAX).all():  # NaN fails too; finite doubles can overflow float32 (1e308)
        raise Unprocessable(f"{field}: values must be finite float32 numbers (|z| <= {FLOAT32_MAX:.3g})")
    return np.ascontiguousarray(z, dtype=np.float32)


def sample_prior(n: int, latent_dim: int, seed: int, temperature: float) -> np.ndarray:
    """z = temperature * N(0, I), reproducible from the seed."""
    return (
        np.random.default_rng(seed).standard_normal((n, latent_dim), dtype=np.float32) * temperature
    ).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985) along the great circle between z0 and z1: at equal
    norms it moves at constant angular speed and keeps every point at that norm, where a Gaussian
    prior puts its mass, instead of cutting through the low-density centre as a straight line does.
    Falls back to linear when the two directions (nearly) coincide or a latent is zero."""
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        return linear(z0, z1, t)
    omega = np.arccos(np.clip(np.dot(z0 / n0, z1 / n1), -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return linear(z0, z1, t)
    t = t[:, None]
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def linear(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: str) -> np.ndarray:
    """``steps`` points from z0 to z1, both included: float32 [steps, D]."""
    t = np.linspace(0.0, 1.0, steps)
    path = (
        slerp(z0.astype(np.float64), z1.astype(np.float64), t)
        if method == "slerp"
        else linear(z0.astype(np.float64), z1.astype(np.float64), t)
    )
    path[0], path[-1] = z0, z1  # exact endpoints, free of rounding
    return path.astype(np.float32)


def b64decode(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest(f"{field}: not valid base64 ({e})") from e


def check_image_bytes(data: bytes, limit: int, field: str) -> None:
    if len(data) > limit:
        raise PayloadTooLarge(
            f"{field}: {len(data)} bytes, more than the limit of {limit} (VAE_MAX_IMAGE_BYTES)"
        )


# Decoding and resizing images holds the GIL for all but large images, so in a worker thread it
# fights the event loop for it: /encode of 16 small PNGs at 32 connections answered 212 requests/s
# that way and 435 on the event loop (wrk, measured). Small images are therefore prepared on the loop;
# requests whose headers declare more pixels than this go to a thread, where Pillow's decoders and
# resizing release the GIL and a long decode does not stall other requests.
INLINE_PIXELS = 1 << 18


async def image_inputs(uploads: list[tuple[bytes, str]], spec: Preprocessing) -> np.ndarray:
    """(bytes, field name) of each upload -> x [N, C, H, W], or a 400 naming the upload's field."""
    headers = [_checked(read_header, field, data, spec.max_pixels) for data, field in uploads]
    fields = [field for _, field in uploads]
    if sum(img.width * img.height for img in headers) <= INLINE_PIXELS:
        return _prepare(headers, fields, spec)
    return await run_in_threadpool(_prepare, headers, fields, spec)


def _prepare(headers: list[Image.Image], fields: list[str], spec: Preprocessing) -> np.ndarray:
    return np.stack([_checked(_pixels, f, h, spec) for h, f in zip(headers, fields, strict=True)])


def _pixels(header: Image.Image, spec: Preprocessing) -> np.ndarray:
    return image_to_array(decode_pixels(header), spec)


def _checked(step: Callable[..., T], field: str, *args: object) -> T:
    try:
        return step(*args)
    except ImageError as e:
        raise BadRequest(f"{field}: {e}") from e
