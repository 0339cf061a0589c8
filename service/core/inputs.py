"""Uploaded image files -> the model input x, through the model's own preprocessing.

Every upload is refused or accepted by what its header declares before any pixel is decoded, and
every failure names the upload's field (``files[2]``, ``images[0]``, ``start.image``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from common.preprocessing import (
    Header,
    ImageError,
    Preprocessing,
    decode_pixels,
    image_to_array,
    read_header,
)
from service.core.errors import BadRequest, PayloadTooLarge

T = TypeVar("T")

# Decoding and resizing images holds the GIL for all but large images, so in a worker thread it
# fights the event loop for it: /encode of 16 small PNGs at 32 connections answered 212 requests/s
# that way and 435 on the event loop (wrk, measured). Small images are therefore prepared on the loop;
# requests whose headers declare more pixels than this go to a thread, where Pillow's decoders and
# resizing release the GIL and a long decode does not stall other requests.
INLINE_PIXELS = 1 << 18


@dataclass(frozen=True)
class Upload:
    data: bytes
    field: str  # where it came from in the request, for error messages


def b64decode(value: str, field: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise BadRequest(field, f"not valid base64 ({e})") from e


def check_size(upload: Upload, limit: int) -> None:
    if len(upload.data) > limit:
        raise PayloadTooLarge(
            upload.field, f"{len(upload.data)} bytes, more than the limit of {limit} (VAE_MAX_IMAGE_BYTES)"
        )


async def images_to_x(
    uploads: Sequence[Upload], spec: Preprocessing, max_pixels: int, gate: asyncio.Semaphore
) -> np.ndarray:
    """The uploads -> x [N, C, H, W], or a 400 naming the upload that could not be read. Every header
    is read (and refused) before any pixel is decoded; ``max_pixels`` bounds them all together, and
    large images are decoded in a thread, as many requests at a time as ``gate`` lets through: a
    16-megapixel RGBA PNG holds about 130 MiB while it is decoded and reduced (measured)."""
    headers = [_checked(read_header, u.field, u.data, spec.max_pixels) for u in uploads]
    declared = sum(img.width * img.height for img in headers)
    if declared > max_pixels:
        raise PayloadTooLarge(
            uploads[0].field.split("[")[0],  # files or images: the list as a whole
            f"{declared} pixels in all, more than the limit of {max_pixels} a request "
            "(VAE_MAX_REQUEST_PIXELS)",
        )
    fields = [u.field for u in uploads]
    if declared <= INLINE_PIXELS:
        return _prepare(headers, fields, spec)
    async with gate:
        return await asyncio.to_thread(_prepare, headers, fields, spec)


def _prepare(headers: list[Header], fields: list[str], spec: Preprocessing) -> np.ndarray:
    """One image at a time, each decoded, reduced and closed before the next: a request holds at most
    one decoded image, not all of them."""
    x = np.empty((len(headers), spec.channels, spec.height, spec.width), dtype=np.float32)
    for i, (header, field) in enumerate(zip(headers, fields, strict=True)):
        try:
            x[i] = _checked(_pixels, field, header, spec)
        finally:
            header.close()  # frees its pixels now, not when the request ends
    return x


def _pixels(header: Header, spec: Preprocessing) -> np.ndarray:
    return image_to_array(decode_pixels(header), spec)


def _checked(step: Callable[..., T], field: str, *args: object) -> T:
    try:
        return step(*args)
    except ImageError as e:
        raise BadRequest(field, str(e)) from e
