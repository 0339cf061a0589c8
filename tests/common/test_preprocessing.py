"""Uploads and folder images become x the same way: real PNG/JPEG bytes through Pillow."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from common.preprocessing import ImageError, Preprocessing, preprocess_bytes
from harness.files import encode_image

MNIST = Preprocessing()


def test_png_round_trip_is_exact(digit_images: np.ndarray) -> None:
    x = preprocess_bytes(encode_image(digit_images[0], "PNG"), MNIST)
    assert x.shape == (1, 28, 28) and x.dtype == np.float32
    assert np.array_equal(x[0], digit_images[0] / np.float32(255))


def test_jpeg_is_close(digit_images: np.ndarray) -> None:
    x = preprocess_bytes(encode_image(digit_images[1], "JPEG"), MNIST)
    assert np.abs(x[0] - digit_images[1] / 255).mean() < 0.03


def test_rgb_and_larger_images_are_converted_and_resized(digit_images: np.ndarray) -> None:
    big = np.asarray(Image.fromarray(digit_images[2]).resize((112, 112), Image.Resampling.NEAREST))
    x = preprocess_bytes(encode_image(big, "PNG", mode="RGB"), MNIST)
    assert x.shape == (1, 28, 28)
    assert np.abs(x[0] - digit_images[2] / 255).mean() < 0.03


def test_non_square_images_are_padded_not_stretched() -> None:
    wide = np.zeros((10, 40), dtype=np.uint8)
    wide[:, :] = 255  # a white bar 4x as wide as tall
    x = preprocess_bytes(encode_image(wide, "PNG"), MNIST)[0]
    assert x[0].max() == 0 and x[-1].max() == 0  # padding above and below
    assert x[14, 2:26].min() > 0.9


def test_transparency_is_flattened_onto_the_background() -> None:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = 255
    rgba[10:18, 10:18, 3] = 255  # opaque white square, the rest fully transparent white
    buf = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buf, format="PNG")
    x = preprocess_bytes(buf.getvalue(), MNIST)[0]
    assert x[12, 12] == 1.0 and x[0, 0] == 0.0


def test_invert_for_dark_strokes_on_paper() -> None:
    paper = np.full((28, 28), 255, dtype=np.uint8)
    paper[5:20, 13:15] = 0
    x = preprocess_bytes(encode_image(paper, "PNG"), Preprocessing(invert=True))[0]
    assert x[10, 13] == 1.0 and x[0, 0] == 0.0


def test_rgb_models_get_three_channels(digit_images: np.ndarray) -> None:
    x = preprocess_bytes(
        encode_image(digit_images[0], "PNG", mode="RGB"), Preprocessing(channels=3, height=16, width=16)
    )
    assert x.shape == (3, 16, 16)
    assert np.allclose(x[0], x[1]) and np.allclose(x[1], x[2])


def test_exif_orientation_is_applied() -> None:
    img = np.zeros((28, 28), dtype=np.uint8)
    img[0, :] = 255  # top row white
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", exif=exif, quality=100)
    x = preprocess_bytes(buf.getvalue(), MNIST)[0]
    assert x[-1].mean() > 0.8 and x[0].mean() < 0.2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"definitely not an image", "not a recognised image"),
        (b"", "not a recognised image"),
    ],
)
def test_non_images_are_refused(data: bytes, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        preprocess_bytes(data, MNIST)


def test_truncated_png_is_refused(digit_images: np.ndarray) -> None:
    data = encode_image(digit_images[0], "PNG")
    with pytest.raises(ImageError):
        preprocess_bytes(data[: len(data) // 2], MNIST)


def test_oversize_images_are_refused_before_decoding() -> None:
    big = encode_image(np.zeros((300, 300), dtype=np.uint8), "PNG")
    with pytest.raises(ImageError, match="300x300 pixels, more than the limit of 10000"):
        preprocess_bytes(big, Preprocessing(max_pixels=10_000))


def test_animated_images_are_refused() -> None:
    frames = [Image.fromarray(np.full((28, 28), v, dtype=np.uint8)) for v in (255, 0, 0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="animated images are not accepted"):
        preprocess_bytes(buf.getvalue(), MNIST)
