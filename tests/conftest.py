"""Shared fixtures: real digits (scikit-learn's) and a tiny model repository built without torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.files import digits
from harness.tiny_model import tiny_repository


@pytest.fixture(scope="session")
def digit_images() -> np.ndarray:
    """Twelve real handwritten digits, uint8 [12, 28, 28], white strokes on black like MNIST."""
    return digits(12)


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model repository of tiny ONNX graphs: digits/2 and digits/10 (1x8x8 images, D = 4)."""
    return tiny_repository(tmp_path_factory.mktemp("models"))
