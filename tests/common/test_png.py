"""Grey PNGs decoded by libspng give the pixels, and so the x, that Pillow gives; every other PNG,
and any PNG that is not whole and right, is left to Pillow."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from common.png import GreyPng, grey_png
from common.preprocessing import (
    WORK_SIDE,
    ImageError,
    Preprocessing,
    decode_pixels,
    image_to_array,
    preprocess_bytes,
    read_header,
)
from harness.files import encode_image

MNIST = Preprocessing(normalize="mnist")
PLAIN = Preprocessing()  # flatten, pad and resize only


def _png(image: Image.Image, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", **options)
    return buf.getvalue()


def _by_pillow(data: bytes, spec: Preprocessing) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return image_to_array(img, spec)


def _grey_files(digit_images: np.ndarray) -> dict[str, bytes]:
    digit = Image.fromarray(digit_images[3])
    text = PngImagePlugin.PngInfo()
    text.add_text("Software", "a scanner")
    scan = Image.fromarray(
        255 - np.kron(digit_images[5], np.ones((9, 6), np.uint8))
    )  # dark on light, 252x168
    return {
        "mnist, level 6": _png(digit),
        "mnist, level 0": _png(digit, compress_level=0),
        "mnist, optimized": _png(digit, optimize=True),
        "with text and dpi": _png(digit, pnginfo=text, dpi=(300, 300)),
        "scan, not square": _png(scan),
        "largest taken": _png(Image.fromarray(np.tile(digit_images[7], (18, 18))[:WORK_SIDE, :WORK_SIDE])),
    }


def test_grey_pngs_give_pillow_s_pixels_and_x(digit_images: np.ndarray) -> None:
    for name, data in _grey_files(digit_images).items():
        png = read_header(data, 40_000_000)
        assert isinstance(png, GreyPng), name
        with Image.open(io.BytesIO(data)) as img:
            assert np.array_equal(png.pixels(), np.asarray(img)), name
        for spec in (MNIST, PLAIN):
            assert np.array_equal(preprocess_bytes(data, spec), _by_pillow(data, spec)), (name, spec)


def test_other_pngs_are_left_to_pillow(digit_images: np.ndarray) -> None:
    digit = Image.fromarray(digit_images[4])
    exif = Image.Exif()
    exif[0x0112] = 6  # turned: its pixels are not what the file holds
    others = {
        "RGB": _png(digit.convert("RGB")),
        "RGBA": _png(digit.convert("RGBA")),
        "grey with alpha": _png(digit.convert("LA")),
        "palette": _png(digit.convert("P")),
        "16-bit grey": _png(digit.convert("I;16")),
        "1-bit": _png(digit.convert("1")),
        "a transparent grey level": _png(digit, transparency=0),
        "EXIF orientation": _png(digit, exif=exif),
        "animated": _png(digit, save_all=True, append_images=[digit.rotate(90)]),
        "larger than the working size": _png(digit.resize((WORK_SIDE + 1, 28))),
    }
    for name, data in others.items():
        assert grey_png(data) is None or name == "larger than the working size", name
        if name == "animated":  # Pillow's header reading refuses it, as before
            with pytest.raises(ImageError, match="animated"):
                read_header(data, 40_000_000)
            continue
        assert not isinstance(read_header(data, 40_000_000), GreyPng), name
        assert preprocess_bytes(data, PLAIN).shape == (1, 28, 28), name


def test_broken_pngs_are_left_to_pillow_which_refuses_them(digit_images: np.ndarray) -> None:
    data = encode_image(digit_images[0], "PNG")
    bad_crc = bytearray(data)
    bad_crc[-20] ^= 0xFF  # a byte of IDAT's data: its CRC no longer matches
    for broken in (bytes(bad_crc), data[: len(data) // 2], data[:-12]):
        assert grey_png(broken) is None


def test_a_stream_that_does_not_inflate_is_a_400_not_a_crash(digit_images: np.ndarray) -> None:
    """Chunks whole and CRCs right (so libspng is given it), but IDAT's data is not zlib."""
    data = encode_image(digit_images[0], "PNG")
    start = data.index(b"IDAT") - 4
    (length,) = struct.unpack_from(">I", data, start)
    garbage = b"\xab" * length
    chunk = struct.pack(">I", length) + b"IDAT" + garbage
    chunk += struct.pack(">I", zlib.crc32(b"IDAT" + garbage))
    forged = data[:start] + chunk + data[start + 12 + length :]
    header = read_header(forged, 40_000_000)
    assert isinstance(header, GreyPng)
    with pytest.raises(ImageError, match="corrupt or truncated"):
        decode_pixels(header)


def test_the_pixel_limit_holds_for_grey_pngs(digit_images: np.ndarray) -> None:
    with pytest.raises(ImageError, match="28x28 pixels, more than the limit of 700"):
        read_header(encode_image(digit_images[0], "PNG"), 700)
