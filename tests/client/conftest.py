"""A folder of real digit images, and a server to send them to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from harness.ports import free_port
from harness.processes import service


@pytest.fixture(scope="session")
def digit_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """30 of scikit-learn's 8x8 digits as PNG in two sub-folders, a corrupt PNG and a text file
    named like an image."""
    from sklearn.datasets import load_digits

    folder = tmp_path_factory.mktemp("digits")
    images = (load_digits().images[:30] * (255 / 16)).astype(np.uint8)
    for i, pixels in enumerate(images):
        sub = folder / ("even" if i % 2 == 0 else "odd")
        sub.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(sub / f"{i:03d}.png")
    (folder / "odd" / "broken.png").write_bytes((folder / "even" / "000.png").read_bytes()[:40])
    (folder / "notes.jpg").write_text("not a picture")
    (folder / "readme.txt").write_text("not an image file name: never sent")
    return folder


@pytest.fixture(scope="module")
def server_url(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    settings = {"default_model": "digits", "max_images": "8", "access_log": "false"}
    with service(model_repository, tmp_path_factory.mktemp("client-server"), port, **settings):
        yield f"http://127.0.0.1:{port}"
