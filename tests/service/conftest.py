"""An in-process app over the tiny digits repository, with small limits to test against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.main import create_app
from service.settings import Settings


def settings_for(models: Path, **overrides: object) -> Settings:
    values: dict = dict(
        models_dir=models,
        default_model="digits",
        max_images=8,
        max_n=32,
        max_steps=16,
        max_body_bytes=300_000,
        max_image_bytes=100_000,
        max_image_pixels=1_000_000,
    )
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="module")
def client(model_repository: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(model_repository))) as c:  # the lifespan loads the models
        yield c
