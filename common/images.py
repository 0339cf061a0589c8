"""Turning x in [0, 1] back into pictures: uint8 conversion, grids and PNG bytes. Torch-free."""

from __future__ import annotations

import struct
import zlib

import numpy as np
from PIL import Image


def to_uint8(x: np.ndarray) -> np.ndarray:
    """float [..., C, H, W] in [0, 1] -> uint8, rounded (values outside are clipped)."""
    return (np.clip(x, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2, fill: int = 255) -> np.ndarray:
    """uint8 [N, C, H, W] -> one uint8 [C, H', W'] mosaic, ``ncol`` per row (default: square-ish)."""
    n, c, h, w = images.shape
    ncol = ncol or int(np.ceil(np.sqrt(n)))
    nrow = int(np.ceil(n / ncol))
    out = np.full((c, nrow * (h + pad) + pad, ncol * (w + pad) + pad), fill, dtype=np.uint8)
    for i, img in enumerate(images):
        r, col = divmod(i, ncol)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        out[:, top : top + h, left : left + w] = img
    return out


def to_pil(image: np.ndarray) -> Image.Image:
    """uint8 [C, H, W] -> a Pillow image (L or RGB)."""
    if image.shape[0] == 1:
        return Image.fromarray(image[0], mode="L")
    return Image.fromarray(image.transpose(1, 2, 0), mode="RGB")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOR_TYPE = {1: 0, 3: 2}  # channels -> greyscale, truecolour


def png_bytes(image: np.ndarray, compress_level: int = 6) -> bytes:
    """uint8 [C, H, W] (C = 1 or 3) -> the bytes of a PNG file.

    Written from the array with zlib (the PNG specification's IHDR, one IDAT of unfiltered scanlines,
    IEND) instead of through Pillow: for images as small as a VAE's, Pillow's per-call set-up costs
    three times the compression itself (28x28 at level 1: 31 us against 11 us per image, measured),
    and a response carries dozens of them.
    """
    c, h, w = image.shape
    scanlines = np.zeros((h, 1 + w * c), dtype=np.uint8)  # each starts with its filter type: 0, none
    scanlines[:, 1:] = image.transpose(1, 2, 0).reshape(h, w * c)
    header = struct.pack(">IIBBBBB", w, h, 8, PNG_COLOR_TYPE[c], 0, 0, 0)  # 8 bits, no interlace
    idat = zlib.compress(scanlines.tobytes(), compress_level)
    return b"".join((PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", idat), _chunk(b"IEND", b"")))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
