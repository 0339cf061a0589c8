"""The priors the service draws from and scores with, against direct computations."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest

from common.priors import Mixture, StandardNormal, mixture_bytes, read_mixture


def _direct(z: np.ndarray, means: np.ndarray, logvars: np.ndarray) -> np.ndarray:
    """log 1/K sum_k N(z; m_k, v_k), one component and one dimension at a time."""
    out = []
    for row in z:
        terms = [
            sum(
                -0.5 * (math.log(2 * math.pi) + lv + (zi - m) ** 2 / math.exp(lv))
                for zi, m, lv in zip(row, mk, lk, strict=True)
            )
            for mk, lk in zip(means, logvars, strict=True)
        ]
        top = max(terms)
        out.append(top + math.log(sum(math.exp(t - top) for t in terms)) - math.log(len(means)))
    return np.array(out)


def test_the_mixture_density_is_the_mean_of_its_components() -> None:
    rng = np.random.default_rng(0)
    means, logvars = rng.normal(0, 1, (7, 3)), rng.normal(-0.5, 0.4, (7, 3))
    z = rng.normal(0, 2, (11, 3))
    assert np.allclose(Mixture(means, logvars).log_density(z), _direct(z, means, logvars), atol=1e-9)
    # one component at the standard normal is the standard normal
    one = Mixture(np.zeros((1, 3)), np.zeros((1, 3)))
    assert np.allclose(one.log_density(z), StandardNormal(3).log_density(z))


def test_samples_follow_the_components_and_temperature_scales_their_spread() -> None:
    means = np.array([[-5.0, 0.0], [5.0, 0.0]], dtype=np.float32)
    logvars = np.full((2, 2), math.log(0.25), dtype=np.float32)  # sigma 0.5
    prior = Mixture(means, logvars)
    z = prior.sample(20_000, np.random.default_rng(1))
    left = z[z[:, 0] < 0]
    assert abs(len(left) / len(z) - 0.5) < 0.02  # each component drawn with probability 1/K
    assert np.allclose(left.mean(axis=0), [-5, 0], atol=0.03) and np.allclose(
        left.std(axis=0), 0.5, atol=0.02
    )
    cold = prior.sample(1000, np.random.default_rng(1), temperature=0.1)
    assert np.allclose(np.abs(cold[:, 0]), 5, atol=0.25)  # t -> 0: the components' centres
    again = prior.sample(5, np.random.default_rng(7))
    assert np.array_equal(again, prior.sample(5, np.random.default_rng(7)))  # same seed, same z


def test_a_prior_file_is_read_only_when_it_is_what_the_manifest_says() -> None:
    good = mixture_bytes(np.zeros((4, 2)), np.zeros((4, 2)))
    assert read_mixture(good, 4, 2).means.shape == (4, 2)
    with pytest.raises(ValueError, match=r"means is float32 \[4, 2\], the manifest implies float32 \[5, 2\]"):
        read_mixture(good, 5, 2)
    with pytest.raises(ValueError, match="not finite"):
        read_mixture(mixture_bytes(np.full((4, 2), np.nan), np.zeros((4, 2))), 4, 2)
    pickled = io.BytesIO()
    np.savez(pickled, means=np.array([{"a": 1}], dtype=object), logvars=np.zeros((1, 2)))
    with pytest.raises(ValueError, match="pickle"):
        read_mixture(pickled.getvalue(), 1, 2)
