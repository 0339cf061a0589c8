"""The use cases of the core, on real ONNX sessions and real PNG bytes, without any HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from harness.files import encode_image
from service.core.engine import Engine, Limits
from service.core.errors import BadRequest, PayloadTooLarge, Unprocessable
from service.core.inputs import Upload
from service.core.model import Model
from service.core.registry import Catalog
from tests.service.conftest import settings_for

RUNNER = asyncio.Runner()  # one event loop for the module, as a server has: the batchers live in it


@pytest.fixture(scope="module")
def model_and_engine(model_repository: Path):
    settings = settings_for(model_repository)
    catalog = Catalog.scan(settings)
    yield catalog.get(), Engine(Limits.of(settings))
    catalog.close()
    RUNNER.close()


def run(coroutine):
    return RUNNER.run(coroutine)


def test_encode_is_the_encoder_on_the_preprocessed_images(
    model_and_engine: tuple[Model, Engine], digit_images: np.ndarray
) -> None:
    model, engine = model_and_engine
    uploads = [Upload(encode_image(img, "PNG"), f"files[{i}]") for i, img in enumerate(digit_images[:3])]
    result = run(engine.encode(model, uploads, sample=True, seed=5))
    x = run(engine.images_to_x(model, uploads))
    mu, logvar = model.encode_now(x)
    assert np.allclose(result.mu, mu) and np.allclose(result.sigma, np.exp(0.5 * logvar))
    again = run(engine.encode(model, uploads, sample=True, seed=5))
    assert result.seed == 5 and result.z is not None and np.array_equal(result.z, again.z)


def test_sample_and_interpolate_decode_what_they_return(model_and_engine: tuple[Model, Engine]) -> None:
    model, engine = model_and_engine
    sampled = run(engine.sample(model, 4, seed=1, temperature=0.5))
    assert sampled.z is not None and sampled.z.shape == (4, 4)
    assert np.allclose(sampled.x_mean, model.decode_now(sampled.z)[0])
    path = run(engine.interpolate(model, sampled.z[0], sampled.z[1], 5, "slerp"))
    assert path.z is not None and np.array_equal(path.z[[0, -1]], sampled.z[:2])
    assert np.allclose(path.x_mean, model.decode_now(path.z)[0])


def test_limits_and_bad_uploads_name_their_field(model_and_engine: tuple[Model, Engine]) -> None:
    model, engine = model_and_engine
    with pytest.raises(Unprocessable, match="more than the limit of 32") as refused:
        run(engine.sample(model, 33, seed=None, temperature=1.0))
    assert refused.value.field == "n"
    with pytest.raises(BadRequest) as unreadable:
        run(engine.encode(model, [Upload(b"not an image", "files[0]")]))
    assert unreadable.value.field == "files[0]" and unreadable.value.status_code == 400
    with pytest.raises(PayloadTooLarge) as large:
        run(engine.encode(model, [Upload(bytes(100_001), "images[2]")]))
    assert large.value.field == "images[2]"
