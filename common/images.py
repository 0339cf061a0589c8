"""Turning x in [0, 1] back into pictures: uint8 conversion, grids and PNG bytes. Torch-free."""

from __future__ import annotations

import io

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


def png_bytes(image: np.ndarray, compress_level: int = 6) -> bytes:
    buf = io.BytesIO()
    to_pil(image).save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()
