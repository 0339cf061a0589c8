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
        item = Image.fromarray(to_uint8(item))
    if isinstance(item, Image.Image):
        buf = io.BytesIO()
        item.save(buf, format="PNG")
        return buf.getvalue()
    raise TypeError(f"cannot encode a {type(item).__name__}: give a path, bytes, an array or a PIL image")


def to_uint8(a: np.ndarray) -> np.ndarray:
    """[H, W], [H, W, C] or [C, H, W] (C of 1 or 3); floats are taken to be in [0, 1]."""
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.dtype != np.uint8:
        a = (np.clip(a.astype(np.float64), 0, 1) * 255).round().astype(np.uint8)
    return a


def grid(images: np.ndarray, ncol: int | None = None, pad: int = 2) -> Image.Image:
    """Images [N, C, H, W] (x_mean in [0, 1]) -> one picture of tiles on white, ``ncol`` a row."""
    tiles = [Image.fromarray(to_uint8(image)) for image in images]
    width, height = tiles[0].size
    ncol = ncol or int(np.ceil(np.sqrt(len(tiles))))
    nrow = -(-len(tiles) // ncol)
    canvas = Image.new(tiles[0].mode, (ncol * (width + pad) + pad, nrow * (height + pad) + pad), "white")
    for i, tile in enumerate(tiles):
        canvas.paste(tile, (pad + (i % ncol) * (width + pad), pad + (i // ncol) * (height + pad)))
    return canvas
