"""How an image file becomes the model input x: the one function training and serving share.

An image is decoded with Pillow (a small still grey PNG with libspng, to the same pixels:
common/png.py), reduced at once to a working size (JPEG at decode time, others right after it) and
released, turned upright by its EXIF orientation, flattened onto the background
colour when it has transparency, converted to the model's mode (``L`` for one channel, ``RGB`` for
three), padded with the background to the model's aspect ratio, resized, and scaled to [0, 1] by
dividing by 255. The result is float32 [C, H, W].

Memory is bounded by design: the header's pixel count is checked before anything is decoded, and
every array made after decoding is at most the working size (``WORK_SIDE`` a side), whatever the
image's size or aspect ratio.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from common.normalize import NoInk, normalize
from common.png import GreyPng, grey_png

# The formats accepted: the common ones for photos and scans. Pillow opens dozens more (PSD, FITS,
# ICNS, SGI, ...), each a parser exposed to untrusted bytes for no use here.
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
# their file extensions; used to pick images out of a folder
IMAGE_SUFFIXES = frozenset(ext for ext, fmt in Image.registered_extensions().items() if fmt in FORMATS)
# the pixel limit below is ours and lower; Pillow's own warning about large images says nothing more
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
ORIENTATION = ExifTags.Base.Orientation
# the longest side an image keeps once decoded: everything after decoding works at most this large
WORK_SIDE = 512


class ImageError(ValueError):
    """The bytes are not an image this preprocessing accepts."""


NORMALIZATIONS = ("none", "mnist")


@dataclass(frozen=True)
class Preprocessing:
    channels: int = 1  # 1 -> grayscale "L", 3 -> "RGB"
    height: int = 28
    width: int = 28
    background: int = 0  # grey level used for transparency and padding (MNIST: black)
    invert: bool = False  # 255 - value, for dark strokes on a light ground ("none" only)
    max_pixels: int = 40_000_000  # refuse larger images before decoding them
    # "mnist": polarity, background, contrast and geometry decided from the image, as MNIST's digits
    # were made (common/normalize.py); "none": flatten, pad and resize only
    normalize: str = "none"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.normalize == "mnist" and (self.channels, self.height, self.width) != (1, 28, 28):
            raise ValueError("normalize 'mnist' makes 1 x 28 x 28 images")

    @property
    def mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def describe(self) -> str:
        if self.normalize == "mnist":
            return (
                "decode with Pillow; still images only; apply EXIF orientation; composite transparency "
                "onto paper of the ink's opposite shade; grayscale; as MNIST's digits were made: ink "
                "made light (polarity from the border), the paper's background subtracted and the ink "
                "stretched to [0, 1], cropped to the ink, fitted to 20x20 (aspect kept, antialiased) "
                "and centred in 28x28 by its centre of mass; a 28x28 image with light ink on a dark "
                "ground is left unchanged; an image without ink is refused; x as float32 [1, 28, 28]"
            )
        return (
            f"decode with Pillow; still images only; apply EXIF orientation; composite transparency "
            f"onto grey level {self.background}; convert to mode {self.mode}; pad with grey level "
            f"{self.background} to aspect {self.width}:{self.height}; resize to "
            f"{self.width}x{self.height} (bilinear, antialiased)"
            + ("; invert (255 - v)" if self.invert else "")
            + "; x = v / 255 as float32 [C, H, W]"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(**d)


Header = Image.Image | GreyPng  # an image whose header was read, pixels not decoded yet
Decoded = Image.Image | np.ndarray  # decoded: a Pillow image, or a grey PNG's uint8 [H, W]


def read_header(data: bytes, max_pixels: int) -> Header:
    """Parse the header only, no pixels decoded yet; refuse oversize and animated images."""
    png = grey_png(data)
    if png is not None and max(png.width, png.height) <= WORK_SIDE:  # larger: Pillow reduces them
        if png.width * png.height > max_pixels:
            raise ImageError(f"image is {png.width}x{png.height} pixels, more than the limit of {max_pixels}")
        return png
    try:
        img = Image.open(io.BytesIO(data), formats=FORMATS)
    except UnidentifiedImageError as e:
        raise ImageError(f"not a recognised image format (accepted: {', '.join(FORMATS)})") from e
    except Image.DecompressionBombError as e:  # Pillow's own limit, for sizes far beyond ours
        raise ImageError(f"image declares more than the limit of {max_pixels} pixels") from e
    except (OSError, SyntaxError, ValueError, EOFError) as e:  # Pillow raises these on broken headers
        raise ImageError(f"unreadable image: {e}") from e
    width, height = img.size
    if width * height > max_pixels:
        raise ImageError(f"image is {width}x{height} pixels, more than the limit of {max_pixels}")
    try:
        animated = getattr(img, "is_animated", False)  # GIF looks for a second frame, APNG/WebP read headers
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        raise ImageError(f"unreadable image: {e}") from e
    if animated:
        # which frame is meant is anyone's guess, and walking frames is where the time goes
        raise ImageError("animated images are not accepted; send one still frame")
    return img


def decode_pixels(img: Header, work_side: int = WORK_SIDE) -> Decoded:
    """Decode the first frame of an image whose header was read, reduced to at most ``work_side``
    pixels a side: JPEG decodes at a reduced scale (``draft``), other formats are reduced by an
    integer box filter, then resized, right after decoding, so the full-size pixels are freed at once."""
    if isinstance(img, GreyPng):
        try:
            return img.pixels()
        except RuntimeError as e:
            raise ImageError(f"corrupt or truncated image: {e}") from e
    try:
        img.seek(0)
        if max(img.size) > work_side:
            img.thumbnail((work_side, work_side), Image.Resampling.BILINEAR, reducing_gap=2.0)
        else:
            img.load()
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageError(f"corrupt or truncated image: {e}") from e
    return img


def open_image(data: bytes, max_pixels: int) -> Decoded:
    """Decode the header, refuse oversize images, then decode the first frame's pixels."""
    return decode_pixels(read_header(data, max_pixels))


def _flatten(img: Image.Image, spec: Preprocessing) -> Image.Image:
    img = _upright(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        ground = Image.new("RGBA", rgba.size, (spec.background,) * 3 + (255,))
        img = Image.alpha_composite(ground, rgba)
    return img.convert(spec.mode)


def _fit(img: Image.Image, spec: Preprocessing) -> Image.Image:
    w, h = img.size
    # pad the short side so resizing keeps the aspect ratio instead of stretching the content
    target_w = max(w, round(h * spec.width / spec.height))
    target_h = max(h, round(w * spec.height / spec.width))
    if (target_w, target_h) != (w, h):
        fill = spec.background if spec.channels == 1 else (spec.background,) * 3
        canvas = Image.new(spec.mode, (target_w, target_h), fill)
        canvas.paste(img, ((target_w - w) // 2, (target_h - h) // 2))
        img = canvas
    if img.size != (spec.width, spec.height):
        img = img.resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    return img


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says; itself when there is nothing to turn (Pillow's
    exif_transpose copies it even then)."""
    if img.getexif().get(ORIENTATION, 1) == 1:
        return img
    return ImageOps.exif_transpose(img)


def _on_paper(img: Image.Image) -> Image.Image:
    """Grey levels of an image, its transparent parts made paper: of the shade opposite the ink's."""
    img = _upright(img)
    if img.mode == "L":  # grey already, and no transparency (an "L" image has no alpha)
        return img
    if not (img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)):
        return img.convert("L")
    rgba = img.convert("RGBA")
    alpha = np.asarray(rgba.getchannel("A"))
    grey = np.asarray(rgba.convert("L"))
    opaque = grey[alpha > 127]
    if opaque.size == 0:
        raise ImageError("no ink found: the image is fully transparent")
    paper = 255 if np.median(opaque) < 128 else 0  # dark ink is drawn on white, light ink on black
    ground = Image.new("RGBA", rgba.size, (paper, paper, paper, 255))
    return Image.alpha_composite(ground, rgba).convert("L")


def image_to_array(img: Decoded, spec: Preprocessing) -> np.ndarray:
    """A decoded image -> float32 [C, H, W] in [0, 1]."""
    if spec.normalize == "mnist":
        # a grey PNG's pixels are already what Pillow's mode "L" would hold
        grey = img if isinstance(img, np.ndarray) else np.asarray(_on_paper(img))
        try:
            return normalize(grey.astype(np.float32) / np.float32(255.0))[None].astype(np.float32)
        except NoInk as e:
            raise ImageError(str(e)) from e
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)  # uint8 [H, W]: mode "L"
    pixels = np.asarray(_fit(_flatten(img, spec), spec), dtype=np.uint8)
    if spec.invert:
        pixels = 255 - pixels
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    return pixels.astype(np.float32) / np.float32(255.0)


def preprocess_bytes(data: bytes, spec: Preprocessing) -> np.ndarray:
    """Encoded image bytes (PNG, JPEG, ...) -> x as float32 [C, H, W] in [0, 1]."""
    return image_to_array(open_image(data, spec.max_pixels), spec)


def preprocess_file(path: Path, spec: Preprocessing) -> np.ndarray:
    return preprocess_bytes(Path(path).read_bytes(), spec)
