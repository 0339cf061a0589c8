"""The importance-weighted estimate of log p(x) for a served model (common/scoring.py has the maths),
its K x N decoder rows sent through the model's dynamic batcher in chunks: memory stays bounded
whatever K, and other requests share the decoder meanwhile."""

from __future__ import annotations

import asyncio

import numpy as np

from common.scoring import Likelihood, Scores, log_weights, sample_chunks, summarize
from service.core.model import Model

CHUNK_ROWS = 256  # decoder rows a step: one merged run of the batcher at the most
INLINE_ROWS = 32  # a chunk this small is weighed on the event loop; larger ones in a thread


async def importance_weighted(model: Model, x: np.ndarray, k: int, rng: np.random.Generator) -> Scores:
    """x [N, C, H, W] in [0, 1] -> scores of each image from K samples of q(z|x)."""
    mu, logvar = (a.astype(np.float64) for a in await model.encode(x))
    manifest = model.manifest
    likelihood = Likelihood(manifest.likelihood, float(manifest.gaussian_sigma or 1.0))
    log_w = np.empty(len(x) * k)
    for where, images, z in sample_chunks(mu, logvar, k, rng, CHUNK_ROWS):
        outputs = await model.decode(z.astype(np.float32))
        args = (x[images], outputs, z, mu[images], logvar[images], model.prior, likelihood)
        log_w[where] = (
            log_weights(*args) if len(z) <= INLINE_ROWS else await asyncio.to_thread(log_weights, *args)
        )
    return summarize(log_w.reshape(len(x), k), int(np.prod(x.shape[1:])))
