"""Uploads as people have them, made from real MNIST test digits, normalized as MNIST was made: what
the model sees is the digit, whatever the paper, pen, light or size; an image without ink is refused."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from common.normalize import stroke_width
from common.preprocessing import ImageError, Preprocessing, preprocess_bytes
from harness import ROOT
from harness.uploads import KINDS

MNIST = Preprocessing(normalize="mnist")


@pytest.fixture(scope="module")
def mnist_digits() -> np.ndarray:
    """The first 40 MNIST test digits, uint8 [40, 28, 28] (fetched and hash-checked as training does)."""
    from training.data import load_mnist

    return load_mnist(ROOT / "data").test.images[:40, 0]


def _agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of two images' pixels: 1 for the same digit drawn alike."""
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_an_upload_in_mnists_own_form_reaches_the_model_unchanged(mnist_digits: np.ndarray) -> None:
    for digit in mnist_digits[:10]:
        x = preprocess_bytes(KINDS["mnist"](digit, np.random.default_rng(0)), MNIST)
        assert np.array_equal(x[0], digit / np.float32(255))


@pytest.mark.parametrize("kind", ["scan", "drawing", "photo", "corner"])
def test_every_kind_of_upload_becomes_the_digit_it_shows(mnist_digits: np.ndarray, kind: str) -> None:
    rng = np.random.default_rng(1)
    agreements = []
    for digit in mnist_digits:
        x = preprocess_bytes(KINDS[kind](digit, rng), MNIST)[0]
        assert x.shape == (28, 28) and x.min() >= 0 and x.max() <= 1
        agreements.append(_agreement(x, digit / 255))
    # measured: medians 0.90 (drawing) to 0.96 (scan); another digit of the same class is about 0.46
    assert np.median(agreements) > 0.75, (kind, np.round(agreements, 2))


def test_dark_ink_on_light_paper_is_inverted_and_thick_strokes_thinned(mnist_digits: np.ndarray) -> None:
    digit = mnist_digits[3]
    inverted = preprocess_bytes(KINDS["mnist"](255 - digit, np.random.default_rng(0)), MNIST)[0]
    assert _agreement(inverted, digit / 255) > 0.8
    drawn = preprocess_bytes(KINDS["drawing"](digit, np.random.default_rng(0)), MNIST)[0]
    assert stroke_width(drawn) < 2.9  # MNIST's 90th percentile is 2.8 px


@pytest.mark.parametrize(
    ("image", "mode"),
    [
        (np.full((60, 80), 255, np.uint8), "L"),  # white paper
        (np.full((60, 80), 97, np.uint8), "L"),  # grey card
        (np.random.default_rng(0).normal(200, 3, (60, 80)).clip(0, 255).astype(np.uint8), "L"),  # paper grain
        (np.zeros((40, 40, 4), np.uint8), "RGBA"),  # a canvas left empty
    ],
)
def test_an_image_without_ink_is_refused(image: np.ndarray, mode: str) -> None:
    buf = io.BytesIO()
    Image.fromarray(image, mode=mode).save(buf, format="PNG")
    with pytest.raises(ImageError, match="no ink found"):
        preprocess_bytes(buf.getvalue(), MNIST)


def test_a_training_folder_is_normalized_by_the_same_function(
    tmp_path: Path, mnist_digits: np.ndarray
) -> None:
    from training.data import load_folder

    rng = np.random.default_rng(2)
    files = {}
    for i, digit in enumerate(mnist_digits[:12]):
        kind = ["scan", "photo", "corner"][i % 3]
        data = KINDS[kind](digit, rng)
        path = tmp_path / str(i % 2) / f"{i}.{'jpg' if kind in ('scan', 'photo') else 'png'}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        files[path] = data
    dataset = load_folder(tmp_path, MNIST)
    images = np.concatenate([dataset.train.images, dataset.valid.images, dataset.test.images])
    expected = {np.round(preprocess_bytes(d, MNIST) * 255).astype(np.uint8).tobytes() for d in files.values()}
    assert {image.tobytes() for image in images} == expected
