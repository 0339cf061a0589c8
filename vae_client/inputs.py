"""What can be encoded: image files, their bytes, NumPy arrays and PIL images, all sent as bytes."""

from __future__ import annotations

import io
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image

ImageInput = str | PathLike | bytes | np.ndarray | Image.Image


def image_bytes(item: ImageInput) -> bytes:
    """The bytes to upload: files as they are (the server decodes them), arrays and images as PNG."""
    if isinstance(item, bytes):
        return item
    if isinstance(item, (str, PathLike)):
        return Path(item).read_bytes()
    if isinstance(item, np.ndarray):
        item = Image.fromarray(_to_uint8(item))
    if isinstance(item, Image.Image):
        buf = io.BytesIO()
        item.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"cannot encode a {type(item).__name__}: give a path, bytes, an array or a PIL image")


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, C] or [C, H, W] (C of 1 or 3); floats are taken to be in [0, 1]."""
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    return a
