"""The prior p(z) of a served model, torch-free: drawn from by /sample and evaluated by /score (and
by export, for a model's reference scores)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from common.scoring import log_standard_normal


@dataclass(frozen=True)
class StandardNormal:
    """p(z) = N(0, I): the prior of the VAE as the tutorial derives it."""

    latent_dim: int

    def sample(self, n: int, rng: np.random.Generator, temperature: float = 1.0) -> np.ndarray:
        """z = temperature * N(0, I): temperature scales the prior's standard deviation."""
        z = rng.standard_normal((n, self.latent_dim), dtype=np.float32)
        return (z * np.float32(temperature)).astype(np.float32)

    def log_density(self, z: np.ndarray) -> np.ndarray:
        return log_standard_normal(z)
