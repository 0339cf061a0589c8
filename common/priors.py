"""The prior p(z) of a served model, torch-free: drawn from by /sample and evaluated by /score (and
by export, for a model's reference scores).

- ``StandardNormal``: N(0, I), the prior of the VAE as the tutorial derives it.
- ``Mixture``: 1/K sum_k N(means_k, diag(exp(logvars_k))), e.g. a VampPrior as exported: the
  encoder's posteriors at its learned pseudo-inputs. Its parameters live in a .npz file of the
  model's folder (two float arrays [K, D], "means" and "logvars"; never pickles).

Temperature scales the spread around what the prior is centred on: for the standard normal,
z = t * eps; for a mixture, a component k is drawn with probability 1/K and z = means_k +
t * sigma_k * eps, so that t -> 0 gives the components' centres and t = 1 the prior itself.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np

from common.scoring import LOG_2PI, log_standard_normal


@dataclass(frozen=True)
class StandardNormal:
    latent_dim: int

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        z = rng.standard_normal((n, self.latent_dim), dtype=np.float32)
        return (z * np.float32(temperature)).astype(np.float32)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        return log_standard_normal(z)


@dataclass(frozen=True)
class Mixture:
    means: np.ndarray  # [K, D]
    logvars: np.ndarray  # [K, D]

    @property
    def latent_dim(self) -> int:
        return int(self.means.shape[1])

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        picks = rng.integers(0, len(self.means), n)
        eps = rng.standard_normal((n, self.latent_dim), dtype=np.float32)
        sigma = np.exp(0.5 * self.logvars[picks])
        return (self.means[picks] + np.float32(temperature) * sigma * eps).astype(np.float32)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        """log 1/K sum_k N(z; m_k, v_k), from products: sum_d (z - m)^2 / v = z^2.1/v - 2 z.m/v + m^2.1/v."""
        means, logvars = self.means.astype(np.float64), self.logvars.astype(np.float64)
        precision = np.exp(-logvars)
        flat = z.reshape(-1, z.shape[-1]).astype(np.float64)
        quadratic = (
            flat**2 @ precision.T - 2 * flat @ (means * precision).T + (means**2 * precision).sum(axis=1)
        )
        per_component = -0.5 * (self.latent_dim * LOG_2PI + logvars.sum(axis=1) + quadratic)
        top = per_component.max(axis=1, keepdims=True)
        log_sum = top[:, 0] + np.log(np.exp(per_component - top).sum(axis=1))
        return (log_sum - math.log(len(means))).reshape(z.shape[:-1])


Prior = StandardNormal | Mixture


def mixture_bytes(means: np.ndarray, logvars: np.ndarray) -> bytes:
    """The .npz file of a mixture prior."""
    buf = io.BytesIO()
    np.savez(buf, means=means.astype(np.float32), logvars=logvars.astype(np.float32))
    return buf.getvalue()


def read_mixture(data: bytes, components: int, latent_dim: int) -> Mixture:
    """A mixture prior from its .npz bytes, checked: two finite float32 arrays [K, D], no pickles."""
    with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
        if set(arrays.files) != {"means", "logvars"}:
            raise ValueError(f"holds {sorted(arrays.files)}, not means and logvars")
        means, logvars = arrays["means"], arrays["logvars"]
    for name, array in (("means", means), ("logvars", logvars)):
        if array.shape != (components, latent_dim) or array.dtype != np.float32:
            wanted = f"float32 [{components}, {latent_dim}]"
            raise ValueError(f"{name} is {array.dtype} {list(array.shape)}, the manifest implies {wanted}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds values that are not finite")
    return Mixture(means, logvars)


def prior_of(latent_dim: int, kind: str, components: int | None, data: bytes | None) -> Prior:
    """A manifest's prior: the standard normal, or the mixture in ``data`` (its verified file)."""
    if kind == "standard_normal":
        return StandardNormal(latent_dim)
    if data is None or components is None:
        raise ValueError("a mixture prior needs its file and its number of components")
    return read_mixture(data, components, latent_dim)
