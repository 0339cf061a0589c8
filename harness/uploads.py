"""Digits as people have them, made from real MNIST digits (uint8 [28, 28], light ink on black), and
things that are not digits: the uploads of `make bench-uploads` and of the tests.

Each maker takes a digit and a random generator and returns the bytes of an image file.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

Maker = Callable[[np.ndarray, np.random.Generator], bytes]


def _save(image: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def _ink(digit: np.ndarray, side: int) -> np.ndarray:
    """The digit's ink as 0..1, scaled to ``side`` pixels (smoothly, as a pen would draw it)."""
    big = Image.fromarray(digit).resize((side, side), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(big, dtype=np.float32) / 255.0, 0.0, 1.0)


def mnist(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """MNIST's own form: 28x28 PNG, light ink on black."""
    return _save(Image.fromarray(digit), "PNG")


def scan(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Dark ink on white paper, scanned large: 560 px, JPEG, a little paper grain."""
    ink = _ink(digit, 560)
    paper = 0.97 + rng.normal(0.0, 0.01, ink.shape)
    pixels = np.clip(paper * (1.0 - 0.9 * ink), 0.0, 1.0)
    return _save(Image.fromarray((pixels * 255).astype(np.uint8)).convert("RGB"), "JPEG", quality=85)


def drawing(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """Drawn with a thick pen on a transparent canvas with wide margins, as a web page exports it:
    a 320 px RGBA PNG, dark opaque strokes a third wider than MNIST's, the digit in the middle."""
    big = Image.fromarray(digit).resize((160, 160), Image.Resampling.BICUBIC)
    ink = np.asarray(big.filter(ImageFilter.MaxFilter(5)), dtype=np.float32) / 255.0  # a fatter pen
    canvas = np.zeros((320, 320, 4), dtype=np.uint8)
    top, left = 80 + int(rng.integers(-30, 30)), 80 + int(rng.integers(-30, 30))
    canvas[top : top + 160, left : left + 160, :3] = 30  # the pen's colour
    canvas[top : top + 160, left : left + 160, 3] = (np.clip(ink * 1.5, 0, 1) * 255).astype(np.uint8)
    return _save(Image.fromarray(canvas, mode="RGBA"), "PNG")


def photo(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A phone photo of the digit on grey paper: uneven light, noise, blur, 640x480 JPEG."""
    h, w = 480, 640
    ys, xs = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    light = 0.55 + 0.2 * xs + 0.1 * ys + rng.normal(0.0, 0.02)  # brighter to one side
    ink = np.zeros((h, w), dtype=np.float32)
    side = int(rng.integers(180, 260))
    top, left = int(rng.integers(20, h - side - 20)), int(rng.integers(20, w - side - 20))
    ink[top : top + side, left : left + side] = _ink(digit, side)
    pixels = light * (1.0 - 0.75 * ink) + rng.normal(0.0, 0.035, (h, w))
    image = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(1.5)
    )
    return _save(image.convert("RGB"), "JPEG", quality=75)


def corner(digit: np.ndarray, rng: np.random.Generator) -> bytes:
    """A small digit (60 px) near a corner of a large white page (800 px), PNG."""
    page = np.ones((800, 800), dtype=np.float32)
    side = 60
    top, left = int(rng.integers(20, 80)), int(rng.integers(20, 80))
    page[top : top + side, left : left + side] -= 0.9 * _ink(digit, side)
    return _save(Image.fromarray((page * 255).astype(np.uint8)), "PNG")


KINDS: dict[str, Maker] = {"mnist": mnist, "scan": scan, "drawing": drawing, "photo": photo, "corner": corner}


# --- things that are not digits ---------------------------------------------------------------


def noise(rng: np.random.Generator) -> bytes:
    return _save(Image.fromarray(rng.integers(0, 256, (200, 200), dtype=np.uint8)), "PNG")


def blankish(rng: np.random.Generator) -> bytes:
    """An almost empty scan: paper grain and a faint smudge somewhere."""
    page = 0.96 + rng.normal(0.0, 0.01, (400, 400))
    y, x = rng.integers(50, 350, 2)
    page[y : y + 30, x : x + 50] -= 0.15
    return _save(Image.fromarray((np.clip(page, 0, 1) * 255).astype(np.uint8)), "JPEG", quality=85)


def shape(rng: np.random.Generator) -> bytes:
    """A circle, a square or a triangle, outlined or filled, dark on white."""
    image = Image.new("L", (280, 280), 255)
    draw = ImageDraw.Draw(image)
    a, b = int(rng.integers(30, 90)), int(rng.integers(190, 250))
    kind, filled = int(rng.integers(0, 3)), bool(rng.integers(0, 2))
    width = int(rng.integers(8, 20))
    fill = 0 if filled else None
    if kind == 0:
        draw.ellipse((a, a, b, b), outline=0, width=width, fill=fill)
    elif kind == 1:
        draw.rectangle((a, a, b, b), outline=0, width=width, fill=fill)
    else:
        draw.polygon([(140, a), (b, b), (a, b)], outline=0, width=width, fill=fill)
    return _save(image, "PNG")


def letter(rng: np.random.Generator) -> bytes:
    """A capital letter, dark on white, in Pillow's own font."""
    image = Image.new("L", (280, 280), 255)
    font = ImageFont.load_default(size=200)
    char = chr(ord("A") + int(rng.integers(0, 26)))
    ImageDraw.Draw(image).text((140, 140), char, fill=0, font=font, anchor="mm")
    return _save(image, "PNG")


NOT_DIGITS: dict[str, Callable[[np.random.Generator], bytes]] = {
    "noise": noise,
    "blank-ish scans": blankish,
    "shapes": shape,
    "letters": letter,
}
