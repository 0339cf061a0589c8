"""PNG bytes written from arrays: every decoder must read back exactly the pixels that went in."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from common.images import grid, png_bytes, to_uint8


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 1, 1), (3, 7, 129), (1, 300, 5)])
@pytest.mark.parametrize("level", [0, 1, 9])
def test_png_round_trips_through_pillow(shape: tuple[int, int, int], level: int) -> None:
    image = np.random.default_rng(sum(shape) + level).integers(0, 256, shape, dtype=np.uint8)
    data = png_bytes(image, level)
    Image.open(io.BytesIO(data)).verify()  # chunk CRCs and structure
    decoded = Image.open(io.BytesIO(data))
    assert decoded.format == "PNG"
    assert decoded.mode == ("L" if shape[0] == 1 else "RGB")
    c, h, w = shape
    assert np.array_equal(np.asarray(decoded).reshape(h, w, c), image.transpose(1, 2, 0))


def test_higher_levels_compress_smooth_images_more() -> None:
    ramp = to_uint8(np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(1, 64, 64))
    sizes = [len(png_bytes(ramp, level)) for level in (0, 1, 9)]
    assert sizes[0] > 64 * 64 > sizes[1] >= sizes[2]


def test_grid_of_decoder_sized_images_encodes() -> None:
    images = np.random.default_rng(0).integers(0, 256, (10, 1, 28, 28), dtype=np.uint8)
    mosaic = grid(images, pad=2, fill=128)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png_bytes(mosaic, 1)))), mosaic[0])
