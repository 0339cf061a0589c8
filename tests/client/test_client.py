"""The Python client against real servers: results in input order across pieces, the same numbers
as the native API, retries that wait out Retry-After while a server sheds load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image
from vae_client import AsyncClient, Client, Retry, ServiceError, Unavailable

from harness.ports import free_port
from harness.processes import service

pytestmark = pytest.mark.server  # starts real processes


def _paths(folder: Path) -> list[Path]:
    return sorted(folder.glob("*/[0-9]*.png"))


def test_encode_splits_to_the_limit_and_keeps_input_order(server_url: str, digit_folder: Path) -> None:
    paths = _paths(digit_folder)  # 30 images, the server takes 8 a request
    with Client(server_url, concurrency=4) as vae:
        assert vae.limits().max_images == 8
        encoded = vae.encode(paths)
        arrays = vae.encode([np.asarray(Image.open(p)) for p in paths[:3]])  # arrays become PNG
    assert encoded.mu.shape == encoded.sigma.shape == (30, 4) and encoded.indices == list(range(30))
    native = httpx.post(
        f"{server_url}/encode", files=[("files", (p.name, p.read_bytes(), "image/png")) for p in paths[20:23]]
    ).json()
    np.testing.assert_allclose(encoded.mu[20:23], native["mu"], rtol=1e-5)
    np.testing.assert_allclose(arrays.mu, encoded.mu[:3], rtol=1e-5)


def test_score_splits_to_k_and_the_row_limit_and_keeps_input_order(
    server_url: str, digit_folder: Path
) -> None:
    paths = _paths(digit_folder)[:12]
    broken = (digit_folder / "odd" / "broken.png").read_bytes()
    with Client(server_url, concurrency=3) as vae:
        scored = vae.score([*paths[:6], broken, *paths[6:]], k=50, seed=4, skip_bad=True)
        again = vae.score(paths[:2], k=50, seed=4)
    assert scored.k == 50 and scored.indices == [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12]
    assert list(scored.failed) == [6] and "not a recognised image format" in scored.failed[6]
    assert scored.log_px.shape == scored.elbo.shape == (12,) and (scored.elbo <= scored.log_px + 1e-9).all()
    assert np.isnan(scored.percentile).all()  # the tiny model carries no reference
    np.testing.assert_allclose(again.log_px, scored.log_px[:2])  # the first piece's seed, the same numbers
    native = httpx.post(
        f"{server_url}/score",
        files=[("files", (p.name, p.read_bytes(), "image/png")) for p in paths[:2]],
        data={"k": "50", "seed": "4"},
    ).json()
    np.testing.assert_allclose(again.log_px, native["log_px"])


def test_unreadable_images_are_skipped_or_raised(server_url: str, digit_folder: Path) -> None:
    paths = _paths(digit_folder)[:5]
    broken = digit_folder / "odd" / "broken.png"
    with Client(server_url) as vae:
        encoded = vae.encode([*paths[:2], broken, *paths[2:]], skip_bad=True)
        with pytest.raises(ServiceError, match=r"files\[2\]"):
            vae.encode([*paths[:2], broken], skip_bad=False)
    assert encoded.indices == [0, 1, 3, 4, 5] and list(encoded.failed) == [2]
    assert "not a recognised image format" in encoded.failed[2]


def test_decode_sample_interpolate(server_url: str, digit_folder: Path) -> None:
    async def run() -> tuple[np.ndarray, ...]:
        async with AsyncClient(server_url) as vae:
            z = np.random.default_rng(0).standard_normal((20, 4)).astype(np.float32)
            decoded = await vae.decode(z)  # 3 requests of at most 8
            samples = await vae.sample(40, seed=3)  # 2 requests of at most 32
            again = await vae.sample(40, seed=3)
            path = await vae.interpolate(z[0], z[1], steps=5)
            between = await vae.interpolate(*_paths(digit_folder)[:2], steps=3)
            return decoded, samples, again, path, between

    decoded, samples, again, path, between = asyncio.run(run())
    assert decoded.shape == (20, 1, 8, 8) and samples.shape == (40, 1, 8, 8)
    np.testing.assert_array_equal(samples, again)  # same seed, same images
    assert path.shape == (5, 1, 8, 8) and between.shape == (3, 1, 8, 8)
    np.testing.assert_allclose(path[0], decoded[0], atol=1e-6)


def test_retries_wait_out_a_server_that_sheds_load(
    model_repository: Path, tmp_path: Path, digit_folder: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"default_model": "digits", "max_images": "2", "max_in_flight": "1", "access_log": "false"}
    paths = _paths(digit_folder)
    with (
        service(model_repository, tmp_path, port, **settings),
        Client(url, concurrency=8, retry=Retry(attempts=20, cap=2)) as vae,
    ):
        encoded = vae.encode(paths)  # 15 requests at once, one admitted at a time
        metrics = httpx.get(f"{url}/metrics").text
    assert encoded.indices == list(range(30))
    refused = sum(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith('vae_shed_total{endpoint="/encode"}')
    )
    assert refused > 0  # the server did refuse, and the client got every answer anyway


def test_a_server_that_is_not_there_raises_unavailable_after_the_tries() -> None:
    with (
        Client(f"http://127.0.0.1:{free_port()}", retry=Retry(attempts=2, base=0.01)) as nowhere,
        pytest.raises(Unavailable, match="2 tries, the last: ConnectError"),
    ):
        nowhere.models()
