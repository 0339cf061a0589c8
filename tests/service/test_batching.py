"""The dynamic batcher over a real model's decoder: merges, keeps order, isolates and sheds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from service.core.batching import Batcher, BatchLimits, Outputs
from service.core.errors import Overloaded
from service.core.loading import load_model
from tests.service.conftest import settings_for

BAD = 999.0  # a latent value the failing network below refuses


@pytest.fixture(scope="module")
def decoder(model_repository: Path):
    model = load_model(model_repository / "digits" / "2", settings_for(model_repository))
    return lambda z: model.decode_now(z)[0]


class Recording:
    """The real decoder, remembering how many rows each run had; fails a run that holds BAD."""

    def __init__(self, decode) -> None:
        self.decode = decode
        self.runs: list[int] = []

    def __call__(self, z: np.ndarray) -> Outputs:
        self.runs.append(len(z))
        if (z == BAD).any():
            raise ValueError("a BAD latent")
        return (self.decode(z),)


def limits(**overrides: float) -> BatchLimits:
    values: dict = dict(max_batch=64, max_delay=0.0, max_queue=1000, max_inline_rows=8)
    values.update(overrides)
    return BatchLimits(**values)


def latents(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((rows, 4), dtype=np.float32)


async def _gather(batcher: Batcher, inputs: list[np.ndarray]) -> list:
    try:
        return await asyncio.gather(*(batcher(z) for z in inputs), return_exceptions=True)
    finally:
        batcher.close()


@pytest.mark.parametrize("inline_rows", [0, 1000])  # in the batcher's thread, and on the event loop
def test_concurrent_requests_merge_and_each_gets_its_own_rows(decoder, inline_rows: int) -> None:
    network = Recording(decoder)
    inputs = [latents(rows, seed) for seed, rows in enumerate([1, 3, 1, 16, 2, 1, 7, 1, 1, 5])]
    batcher = Batcher(network, limits(max_inline_rows=inline_rows), ("digits", "2", "decoder"))
    results = asyncio.run(_gather(batcher, inputs))
    for z, (x_mean,) in zip(inputs, results, strict=True):
        np.testing.assert_allclose(x_mean, decoder(z), rtol=1e-5, atol=1e-6)  # same rows, same order
    assert sum(network.runs) == sum(len(z) for z in inputs)
    assert len(network.runs) < len(inputs)  # merged: fewer runs than requests


def test_no_run_exceeds_the_batch_limit_and_a_larger_request_runs_alone(decoder) -> None:
    network = Recording(decoder)
    inputs = [latents(rows, seed) for seed, rows in enumerate([4, 4, 4, 20, 4, 4, 4, 4])]
    results = asyncio.run(_gather(Batcher(network, limits(max_batch=10), ("d", "2", "decoder")), inputs))
    assert all(not isinstance(r, BaseException) for r in results)
    assert network.runs.count(20) == 1 and sum(network.runs) == 48
    assert all(rows <= 10 for rows in network.runs if rows != 20)


def test_one_bad_request_fails_alone(decoder) -> None:
    network = Recording(decoder)
    good = [latents(2, seed) for seed in range(5)]
    bad = latents(1, 99)
    bad[0, 0] = BAD
    results = asyncio.run(
        _gather(Batcher(network, limits(), ("d", "2", "decoder")), [*good[:2], bad, *good[2:]])
    )
    assert isinstance(results[2], ValueError)
    for z, result in zip(good, results[:2] + results[3:], strict=True):
        np.testing.assert_allclose(result[0], decoder(z), rtol=1e-5, atol=1e-6)
    assert network.runs[0] == 11  # merged first; the failure made each run again alone
    assert network.runs[1:] == [2, 2, 1, 2, 2, 2]


def test_a_full_queue_refuses_at_once(decoder) -> None:
    network = Recording(decoder)
    inputs = [latents(1, seed) for seed in range(10)]
    results = asyncio.run(_gather(Batcher(network, limits(max_queue=3), ("d", "2", "decoder")), inputs))
    refused = [r for r in results if isinstance(r, Overloaded)]
    assert len(refused) == 7 and refused[0].headers == {"Retry-After": "1"}
    assert "VAE_MAX_QUEUE" in refused[0].detail
    assert sum(network.runs) == 3


def test_max_delay_waits_for_a_fuller_batch(decoder) -> None:
    network = Recording(decoder)

    async def staggered(batcher: Batcher) -> list:
        async def late(z: np.ndarray, delay: float) -> Outputs:
            await asyncio.sleep(delay)
            return await batcher(z)

        try:
            return await asyncio.gather(*(late(latents(1, i), 0.005 * i) for i in range(4)))
        finally:
            batcher.close()

    asyncio.run(staggered(Batcher(network, limits(max_delay=0.5, max_batch=4), ("d", "2", "decoder"))))
    assert network.runs == [4]  # without the delay the first would have run alone at once
