"""Digits as people have them, made into digits as MNIST has them.

MNIST's digits were size-normalized to fit a 20x20 box (aspect kept, anti-aliased) and centred in a
28x28 field by their centre of mass, light ink on a black ground. Uploads come as dark ink on white
paper, photos of grey and unevenly lit paper, drawings on transparent canvases, small digits in the
corner of a large scan. ``normalize`` decides from the image itself:

1. polarity: the border is paper; when it is lighter than the middle of the range, the ink is dark
   and the image is inverted, so that ink is always light;
2. background: paper is estimated by a wide median filter at a coarse scale (ink covers less than
   half of any large window, so the median is paper) and subtracted: uneven lighting and grey
   paper become 0;
3. contrast: noise on the paper (four robust standard deviations of the border) sets a floor, the
   stroke cores (most of the way to the darkest ink) the top, and the values between are stretched
   to [0, 1], what stays faint counting as paper; an image with no ink above its noise is refused
   rather than turned into a made-up digit;
4. strokes: drawn much thicker than MNIST's (wider than 9 in 10 of its digits, once fitted), they
   are thinned by a grey-level erosion to MNIST's median width;
5. geometry: the ink's bounding box (the span holding all but a sliver of its mass, so that a speck
   of dust does not count) is cropped, fitted to 20 px on its longer side and centred by its centre
   of mass in 28x28.

An image already in MNIST's own form (28x28, light ink on a dark ground) is left exactly as it is.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

FIELD = 28  # the side of the output
BOX = 20  # the side the ink is fitted into
COARSE = 32  # the side at which the background is estimated
MIN_CONTRAST = 0.2  # ink stands this far above the paper's noise (0..1): a faint smudge is not a digit
CORE = 0.7  # of the way from paper to the darkest ink: made 1, as stroke cores (MNIST's ink mass)
CLEAN = 0.1  # after stretching, less than this is paper: grain, blur and shading left over
STROKE = 2.0  # MNIST's median stroke width, in pixels of the 28x28 field (2 x ink / its outline)
THICK = 2.8  # MNIST's 90th percentile: thicker strokes (a fat pen, a bold scan) are thinned to STROKE
MASS_TAIL = 0.002  # the share of ink mass each side of the bounding box may leave out


class NoInk(ValueError):
    """The image holds nothing that stands out from its paper."""


def normalize(grey: np.ndarray) -> np.ndarray:
    """Grey levels [H, W] in [0, 1] (any polarity, size and lighting) -> [28, 28] in [0, 1]."""
    if _mnist_form(grey):
        return grey  # already MNIST's own form: left as it is
    ink = _cropped(_ink(grey))
    return _centred(_fitted(_thinned(ink)))


def _mnist_form(grey: np.ndarray) -> bool:
    """28x28 with a dark border (its median at most 0.5). The median of the border's 112 values by a
    sort: np.median's generality costs more than the rest of an upload's normalization here."""
    if grey.shape != (FIELD, FIELD):
        return False
    edge = np.sort(_border(grey))
    return float(edge[(edge.size - 1) // 2] + edge[edge.size // 2]) / 2 <= 0.5


def _border(a: np.ndarray) -> np.ndarray:
    width = max(1, min(a.shape) // 16)
    edges = (a[:width], a[-width:], a[:, :width], a[:, -width:])
    return np.concatenate([edge.ravel() for edge in edges])


def _ink(grey: np.ndarray) -> np.ndarray:
    """Light ink on a zero ground, stretched to [0, 1]."""
    g = 1.0 - grey if np.median(_border(grey)) > 0.5 else grey
    g = np.clip(g - _background(g), 0.0, None)
    border = _border(g)  # paper, mostly: a robust spread ignores the ink that reaches it
    spread = 1.4826 * float(np.median(np.abs(border - np.median(border))))
    noise = float(np.median(border)) + 4 * spread
    darkest = float(_smoothed(g).max())
    if darkest - noise < MIN_CONTRAST:
        raise NoInk(f"no ink found: nothing stands out from the background (contrast {darkest - noise:.2f})")
    top = noise + CORE * (darkest - noise)
    ink = np.clip((g - noise) / (top - noise), 0.0, 1.0)
    ink[ink < CLEAN] = 0.0
    return ink


def _background(g: np.ndarray) -> np.ndarray:
    """The paper under the ink: a median over a third of the image at a coarse scale, resized back."""
    h, w = g.shape
    scale = min(1.0, COARSE / max(h, w))
    small = _resize(g, (max(1, round(w * scale)), max(1, round(h * scale))))
    k = max(3, (max(small.shape) // 3) | 1)
    pad = k // 2
    windows = sliding_window_view(np.pad(small, pad, mode="edge"), (k, k))
    return _resize(np.median(windows, axis=(-1, -2)).astype(np.float32), (w, h))


def stroke_width(ink: np.ndarray) -> float:
    """Twice the ink over its outline (total variation): a stroke's width, for strokes long and thin."""
    outline = np.abs(np.diff(ink, axis=0)).sum() + np.abs(np.diff(ink, axis=1)).sum()
    return float(2 * ink.sum() / outline) if outline > 0 else 0.0


def _thinned(ink: np.ndarray) -> np.ndarray:
    """Strokes thicker than THICK once fitted are eroded, at this resolution, to about STROKE."""
    scale = BOX / max(ink.shape)  # output pixels per pixel here
    width = stroke_width(ink) * scale
    if width <= THICK:
        return ink
    k = round((width - STROKE) / scale)  # pixels to take off here, half from each side
    return _filter(_filter(ink, k + 1, np.min, axis=0), k + 1, np.min, axis=1) if k >= 1 else ink


def _filter(a: np.ndarray, k: int, op, axis: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A running minimum (or maximum) of k values along one axis, edges repeated."""
    before, after = (k - 1) // 2, k // 2
    pad = [(0, 0), (0, 0)]
    pad[axis] = (before, after)
    return op(sliding_window_view(np.pad(a, pad, mode="edge"), k, axis=axis), axis=-1)


def _smoothed(a: np.ndarray) -> np.ndarray:
    """A 3x3 mean: one bright pixel of noise is not ink."""
    padded = np.pad(a, 1, mode="edge")
    return sliding_window_view(padded, (3, 3)).mean(axis=(-1, -2))


def _span(mass: np.ndarray) -> tuple[int, int]:
    """The first and last index holding all but MASS_TAIL of the mass at each end."""
    cumulative = np.cumsum(mass) / mass.sum()
    first = int(np.searchsorted(cumulative, MASS_TAIL))
    last = int(np.searchsorted(cumulative, 1.0 - MASS_TAIL))
    return first, min(last, len(mass) - 1)


def _cropped(ink: np.ndarray) -> np.ndarray:
    top, bottom = _span(ink.sum(axis=1))
    left, right = _span(ink.sum(axis=0))
    return ink[top : bottom + 1, left : right + 1]


def _fitted(ink: np.ndarray) -> np.ndarray:
    """The longer side to BOX pixels, aspect kept, anti-aliased."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    return np.clip(_resize(ink, (max(1, round(w * scale)), max(1, round(h * scale)))), 0.0, 1.0)


def _centred(digit: np.ndarray) -> np.ndarray:
    """Pasted into FIELD x FIELD so that its centre of mass lands on the centre (MNIST's rule)."""
    h, w = digit.shape
    ys, xs = np.indices(digit.shape)
    mass = digit.sum()
    cy, cx = ((ys * digit).sum() / mass, (xs * digit).sum() / mass) if mass > 0 else (h / 2, w / 2)
    top = int(np.clip(round(FIELD / 2 - cy), 0, FIELD - h))  # MNIST: the mass at (14, 14)
    left = int(np.clip(round(FIELD / 2 - cx), 0, FIELD - w))
    field = np.zeros((FIELD, FIELD), dtype=np.float32)
    field[top : top + h, left : left + w] = digit
    return field


def _resize(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A float image resized to (width, height), anti-aliased when it shrinks."""
    if (a.shape[1], a.shape[0]) == size:
        return a.astype(np.float32)
    image = Image.fromarray(a.astype(np.float32), mode="F")
    return np.asarray(image.resize(size, Image.Resampling.LANCZOS), dtype=np.float32)
