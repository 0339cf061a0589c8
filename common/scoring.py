"""log p(x), estimated as the theory defines it, torch-free: the service's /score and the reference
distribution that export writes into a model's manifest compute it the same way.

    log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,   z_k ~ q(z|x)

the importance-weighted estimate (Burda et al. 2015): a lower bound on log p(x) in expectation that
tightens as K grows. The mean of the K weights is an estimate of the ELBO.

Under a Bernoulli likelihood a grey pixel x in [0, 1] is scored by its cross-entropy,
x log p + (1 - x) log (1 - p): the expected log-likelihood of the binary images that x is the
probability of (the MNIST protocol binarizes each pixel with probability x). For a 0/1 image this is
exactly log p(x|z).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

LOG_2PI = math.log(2 * math.pi)
# importance samples an image when a request names none, and for a model's reference scores, so
# that a percentile compares like with like: K = 100 is within about 0.6 nats of K = 1000 on MNIST's
# test digits, at a tenth of the cost (docs/api.md)
DEFAULT_K = 100


def log_bernoulli(x: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """sum over pixels of x log sigmoid(l) + (1 - x) log sigmoid(-l), per row: [N]."""
    logits = logits.astype(np.float64, copy=False)
    # log sigmoid(l) = -log(1 + e^-l), without overflow either way
    ll = -(x * np.logaddexp(0.0, -logits) + (1.0 - x) * np.logaddexp(0.0, logits))
    return ll.reshape(len(ll), -1).sum(axis=1)


def log_gaussian(x: np.ndarray, mean: np.ndarray, sigma: float) -> np.ndarray:
    """sum over pixels of log N(x; mean, sigma^2), per row: [N]."""
    ll = -0.5 * ((x - mean.astype(np.float64)) / sigma) ** 2 - math.log(sigma) - 0.5 * LOG_2PI
    return ll.reshape(len(ll), -1).sum(axis=1)


def log_normal(z: np.ndarray, mu: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """log N(z; mu, diag(exp(logvar))) summed over the last axis."""
    return (-0.5 * (LOG_2PI + logvar + (z - mu) ** 2 / np.exp(logvar))).sum(axis=-1)


def log_standard_normal(z: np.ndarray) -> np.ndarray:
    """log N(z; 0, I) summed over the last axis."""
    return (-0.5 * (LOG_2PI + z**2)).sum(axis=-1)


@dataclass(frozen=True)
class Scores:
    log_px: np.ndarray  # [N] nats, the importance-weighted estimate
    elbo: np.ndarray  # [N] nats, the mean of the same K weights
    bits_per_dim: np.ndarray  # [N] -log p(x) / (pixels * ln 2)


def summarize(log_w: np.ndarray, pixels: int) -> Scores:
    """Per image, from the log importance weights [N, K]."""
    k = log_w.shape[1]
    top = log_w.max(axis=1, keepdims=True)
    log_px = (top[:, 0] + np.log(np.exp(log_w - top).sum(axis=1))) - math.log(k)
    return Scores(log_px, log_w.mean(axis=1), -log_px / (pixels * math.log(2)))


def percentile(log_px: np.ndarray, quantiles: list[float]) -> np.ndarray:
    """Where each log p(x) falls among a reference set, 0 to 100, from the set's quantiles at
    0, 1/(n-1), ..., 1 (interpolated between them; 0 or 100 beyond them)."""
    q = np.asarray(quantiles, dtype=np.float64)
    return np.interp(log_px, q, np.linspace(0.0, 100.0, len(q)))


class Prior(Protocol):
    def log_density(self, z: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Likelihood:
    kind: str  # "bernoulli": the decoder's logits; "gaussian": its mean with a fixed sigma
    sigma: float = 1.0

    def log_p(self, x: np.ndarray, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """log p(x|z) per row, from the decoder's outputs (x_mean first, then logits)."""
        if self.kind == "bernoulli":
            return log_bernoulli(x, outputs[1])
        return log_gaussian(x, outputs[0], self.sigma)


def sample_chunks(
    mu: np.ndarray, logvar: np.ndarray, k: int, rng: np.random.Generator, rows: int
) -> Iterator[tuple[slice, np.ndarray, np.ndarray]]:
    """K samples z ~ q(z|x) for each of N images, ``rows`` at a time, as (where in the [N * K] weights,
    which image each row is of, z): row r is sample r % k of image r // k."""
    sigma = np.exp(0.5 * logvar)
    total = len(mu) * k
    for start in range(0, total, rows):
        images = np.arange(start, min(start + rows, total)) // k
        z = mu[images] + sigma[images] * rng.standard_normal((len(images), mu.shape[1]))
        yield slice(start, start + len(images)), images, z


def log_weights(
    x: np.ndarray,
    outputs: Sequence[np.ndarray],
    z: np.ndarray,
    mu: np.ndarray,
    logvar: np.ndarray,
    prior: Prior,
    likelihood: Likelihood,
) -> np.ndarray:
    """log p(x|z) + log p(z) - log q(z|x) for each row."""
    return likelihood.log_p(x, outputs) + prior.log_density(z) - log_normal(z, mu, logvar)


def importance_sampled(
    encode: Callable[[np.ndarray], Sequence[np.ndarray]],
    decode: Callable[[np.ndarray], Sequence[np.ndarray]],
    x: np.ndarray,
    k: int,
    rng: np.random.Generator,
    prior: Prior,
    likelihood: Likelihood,
    rows: int = 4096,
) -> Scores:
    """The scores of x [N, C, H, W] with the encoder and decoder called directly (export uses it for
    a model's reference scores; the service runs the same steps through its batchers)."""
    mu, logvar = (a.astype(np.float64) for a in encode(x)[:2])
    log_w = np.empty(len(x) * k)
    for where, images, z in sample_chunks(mu, logvar, k, rng, rows):
        outputs = decode(z.astype(np.float32))
        log_w[where] = log_weights(x[images], outputs, z, mu[images], logvar[images], prior, likelihood)
    return summarize(log_w.reshape(len(x), k), int(np.prod(x.shape[1:])))
