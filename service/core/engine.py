"""The use cases, as functions of arrays and bytes: encode, decode, sample, interpolate.

Each checks its inputs against the request limits, runs the model's batched networks and counts the
images it made. Routes only parse requests into these calls and render what they return.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.scoring import Scores, percentile
from service.core.errors import Unprocessable, check_limit
from service.core.inputs import Upload, check_size, images_to_x
from service.core.latents import interpolate
from service.core.model import Model
from service.core.scoring import importance_weighted
from service.metrics import IMAGES, SCORE_ROWS, child
from service.settings import Settings


@dataclass(frozen=True)
class Limits:
    """What one request may ask for; published in GET /models so clients can split their work."""

    max_images: int
    max_n: int
    max_steps: int
    max_body_bytes: int
    max_image_bytes: int
    max_temperature: float
    max_request_pixels: int
    max_score_k: int
    max_score_rows: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_images=settings.max_images,
            max_n=settings.max_n,
            max_steps=settings.max_steps,
            max_body_bytes=settings.max_body_bytes,
            max_image_bytes=settings.max_image_bytes,
            max_temperature=settings.max_temperature,
            max_request_pixels=settings.max_request_pixels,
            max_score_k=settings.max_score_k,
            max_score_rows=settings.max_score_rows,
        )


@dataclass(frozen=True)
class Encoding:
    x: np.ndarray  # [N, C, H, W]: what the model saw
    mu: np.ndarray  # [N, D]
    sigma: np.ndarray  # [N, D]
    z: np.ndarray | None = None  # one z ~ q(z|x) per image, when asked for
    seed: int | None = None


@dataclass(frozen=True)
class Scored:
    k: int
    seed: int
    scores: Scores
    percentile: np.ndarray | None  # [N], when the model carries a reference distribution


@dataclass(frozen=True)
class Generated:
    x_mean: np.ndarray  # [N, C, H, W] in [0, 1]
    z: np.ndarray | None = None  # the latents decoded, where the caller did not give them
    seed: int | None = None


def new_seed() -> int:
    return secrets.randbits(63)


class Engine:
    def __init__(self, limits: Limits, decode_threads: int = 1) -> None:
        self.limits = limits
        self._decoding = asyncio.Semaphore(decode_threads)  # large images decoded at once

    def check_count(self, field: str, count: int) -> None:
        if count > self.limits.max_images:
            raise Unprocessable(
                field, f"{count} images, more than the limit of {self.limits.max_images} per request"
            )

    async def images_to_x(self, model: Model, uploads: Sequence[Upload]) -> np.ndarray:
        for upload in uploads:
            check_size(upload, self.limits.max_image_bytes)
        return await images_to_x(uploads, model.preprocessing, self.limits.max_request_pixels, self._decoding)

    async def encode(
        self, model: Model, uploads: Sequence[Upload], sample: bool = False, seed: int | None = None
    ) -> Encoding:
        x = await self.images_to_x(model, uploads)
        mu, logvar = await model.encode(x)
        sigma = np.exp(0.5 * logvar)
        child(IMAGES, "/encode", model.name, model.version).inc(len(x))
        if not sample:
            return Encoding(x, mu, sigma)
        seed = seed if seed is not None else new_seed()
        eps = np.random.default_rng(seed).standard_normal(mu.shape, dtype=np.float32)
        return Encoding(x, mu, sigma, mu + sigma * eps, seed)

    async def score(self, model: Model, uploads: Sequence[Upload], k: int, seed: int | None) -> Scored:
        """log p(x) of each upload by K importance samples (common/scoring.py), with its ELBO, bits
        per dimension and percentile among the model's own test images."""
        check_limit("k", k, self.limits.max_score_k, "VAE_MAX_SCORE_K")
        rows = k * len(uploads)
        if rows > self.limits.max_score_rows:
            raise Unprocessable(
                "k",
                f"{k} samples x {len(uploads)} images = {rows} decoder rows, more than the limit of "
                f"{self.limits.max_score_rows} a request (VAE_MAX_SCORE_ROWS): send fewer images or a "
                "smaller k",
            )
        x = await self.images_to_x(model, uploads)
        seed = seed if seed is not None else new_seed()
        scores = await importance_weighted(model, x, k, np.random.default_rng(seed))
        child(IMAGES, "/score", model.name, model.version).inc(len(x))
        child(SCORE_ROWS, model.name, model.version).inc(rows)
        reference = model.manifest.score_reference
        where = percentile(scores.log_px, reference.quantiles) if reference is not None else None
        return Scored(k, seed, scores, where)

    async def decode(self, model: Model, z: np.ndarray, endpoint: str = "/decode") -> Generated:
        """z: float32 [N, D], already checked against the model (``latents.check_latents``)."""
        x_mean = (await model.decode(z))[0]
        child(IMAGES, endpoint, model.name, model.version).inc(len(z))
        return Generated(x_mean)

    async def sample(self, model: Model, n: int, seed: int | None, temperature: float) -> Generated:
        check_limit("n", n, self.limits.max_n, "VAE_MAX_N")
        check_limit("temperature", temperature, self.limits.max_temperature, "VAE_MAX_TEMPERATURE")
        seed = seed if seed is not None else new_seed()
        z = model.prior.sample(n, np.random.default_rng(seed), temperature)
        return Generated((await self.decode(model, z, "/sample")).x_mean, z, seed)

    async def latent_of(self, model: Model, end: np.ndarray | Upload) -> np.ndarray:
        """An interpolation end: a latent [D] as given, or an image encoded to its mean mu."""
        if isinstance(end, np.ndarray):
            return end
        mu, _ = await model.encode(await self.images_to_x(model, [end]))
        return mu[0]

    async def interpolate(
        self, model: Model, start: np.ndarray | Upload, end: np.ndarray | Upload, steps: int, method: str
    ) -> Generated:
        check_limit("steps", steps, self.limits.max_steps, "VAE_MAX_STEPS")
        path = interpolate(
            await self.latent_of(model, start), await self.latent_of(model, end), steps, method
        )
        return Generated((await self.decode(model, path, "/interpolate")).x_mean, path)
