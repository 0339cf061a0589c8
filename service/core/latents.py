"""Latents: checked against a model, and walked between."""

from __future__ import annotations

import numpy as np

from service.core.errors import Unprocessable

FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_latents(z: np.ndarray, latent_dim: int, max_rows: int, field: str = "z") -> np.ndarray:
    """A float array [N, D] (from JSON or .npy) -> float32 [N, D], checked against the model."""
    if z.ndim != 2 or z.shape[1] != latent_dim or len(z) == 0:
        raise Unprocessable(field, f"shape {list(z.shape)}, expected [N, {latent_dim}] with N >= 1")
    if len(z) > max_rows:
        raise Unprocessable(field, f"{len(z)} latents, more than the limit of {max_rows} per request")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow to Inf is caught just below
        z = np.ascontiguousarray(z, dtype=np.float32)
    # checked after the cast: NaN fails, and so do finite float64 (1e308) or float16 Inf values
    if not np.isfinite(z).all():
        raise Unprocessable(field, f"values must be finite float32 numbers (|z| <= {FLOAT32_MAX:.3g})")
    return z


def latent_rows(rows: list[list[float]], latent_dim: int, max_rows: int, field: str = "z") -> np.ndarray:
    """Rows of a JSON request -> float32 [N, D], each row checked against the model's D."""
    if len(rows) > max_rows:
        raise Unprocessable(field, f"{len(rows)} latents, more than the limit of {max_rows} per request")
    for i, row in enumerate(rows):
        if len(row) != latent_dim:
            raise Unprocessable(
                f"{field}[{i}]", f"has {len(row)} numbers, the model's latent_dim is {latent_dim}"
            )
    return check_latents(np.asarray(rows, dtype=np.float64), latent_dim, max_rows, field)


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation (Shoemake 1985) along the great circle between z0 and z1: at equal
    norms it moves at constant angular speed and keeps every point at that norm, where a Gaussian
    prior puts its mass, instead of cutting through the low-density centre as a straight line does.
    Falls back to linear when the two directions (nearly) coincide or a latent is zero."""
    n0, n1 = np.linalg.norm(z0), np.linalg.norm(z1)
    if n0 == 0 or n1 == 0:
        return linear(z0, z1, t)
    omega = np.arccos(np.clip(np.dot(z0 / n0, z1 / n1), -1.0, 1.0))
    if np.sin(omega) < 1e-6:
        return linear(z0, z1, t)
    t = t[:, None]
    return (np.sin((1 - t) * omega) * z0 + np.sin(t * omega) * z1) / np.sin(omega)


def linear(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    t = t[:, None]
    return (1 - t) * z0 + t * z1


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, method: str) -> np.ndarray:
    """``steps`` points from z0 to z1, both included: float32 [steps, D]."""
    t = np.linspace(0.0, 1.0, steps)
    walk = slerp if method == "slerp" else linear
    path = walk(z0.astype(np.float64), z1.astype(np.float64), t)
    path[0], path[-1] = z0, z1  # exact endpoints, free of rounding
    return path.astype(np.float32)
