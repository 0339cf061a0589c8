"""Bytes of the files the service reads: images in any format, .npy arrays, and real digits."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from service.api.npy import npy_bytes

__all__ = ["digits", "encode_image", "npy_bytes"]


def encode_image(pixels: np.ndarray, fmt: str, mode: str = "L") -> bytes:
    """uint8 pixels [H, W] (or [H, W, C]) -> the bytes of an image file of format ``fmt``."""
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def digits(count: int, side: int = 28) -> np.ndarray:
    """Real handwritten digits from scikit-learn, uint8 [count, side, side], light strokes on dark."""
    from sklearn.datasets import load_digits

    small = load_digits().images[:count] * (255 / 16)
    return np.stack(
        [
            np.asarray(Image.fromarray(d.astype(np.uint8)).resize((side, side), Image.Resampling.BILINEAR))
            for d in small
        ]
    )
