"""Honest evaluation of a trained VAE on held-out data.

- ELBO: E_q[log p(x|z)] - KL, the expectation estimated with the same K samples as the NLL and the
  KL in closed form.
- NLL: the importance-weighted estimate (Burda et al. 2015)
      log p(x) ~= logsumexp_k [log p(x|z_k) + log p(z_k) - log q(z_k|x)] - log K,  z_k ~ q(z|x)
  which is a tighter lower bound on log p(x) than the ELBO, converging to it as K grows.
- Active units: dimensions d with Cov_x(E_q[z_d]) > 0.01 (Burda et al. 2015).
- KL per latent dimension (closed form, standard prior; the VampPrior's KL is estimated from the
  samples), reconstruction error in nats and as the MSE of the mean image at z = mu.

MNIST-like data is binarized once as the contract prescribes: rng(0).random(x.shape) < x.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
from tqdm import tqdm

from training.data import binarize_fixed, to_unit
from training.loss import kl_per_dim, log_likelihood
from training.model import VAE, log_normal

ACTIVE_UNIT_THRESHOLD = 0.01


@dataclass
class EvalResult:
    test_elbo_nats: float  # mean ELBO per image (negative; higher is better)
    test_nll_nats: float  # mean importance-weighted NLL per image (lower is better)
    nll_importance_samples: int
    active_units: int
    latent_dim: int
    kl_nats: float
    kl_per_dim: list[float]
    reconstruction_nats: float  # -E_q[log p(x|z)]
    reconstruction_mse: float  # mean squared error of the mean image decoded at z = mu
    n_images: int
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def importance_weighted(
    model: VAE,
    x: torch.Tensor,
    k: int,
    generator: torch.Generator | None = None,
    chunk_rows: int = 20_000,
    posterior: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each image in ``x``: (log p(x) estimated with K importance samples, E_q[log p(x|z)] and
    E_q[log q(z|x) - log p(z)], the KL, estimated with the same samples). The decoder sees at most
    ``chunk_rows`` latents at a time."""
    mu, logvar = posterior if posterior is not None else model.encode(x)  # reuse a caller's encoding
    sigma = torch.exp(0.5 * logvar)
    per_chunk = max(1, chunk_rows // len(x))
    log_lik, kls = [], []
    for start in range(0, k, per_chunk):
        s = min(per_chunk, k - start)
        eps = torch.randn(s, *mu.shape, generator=generator).to(mu.device)
        z = mu + sigma * eps  # [S, B, D]
        logits = model.decode(z.reshape(-1, mu.shape[1]))
        target = x.unsqueeze(0).expand(s, *x.shape).reshape(-1, *x.shape[1:])
        log_lik.append(log_likelihood(target, logits, model.cfg.likelihood, model.log_sigma).view(s, -1))
        kls.append(log_normal(z, mu, logvar) - model.log_prior(z))
    ll_all, kl_all = torch.cat(log_lik), torch.cat(kls)  # [K, B]
    log_px = torch.logsumexp(ll_all - kl_all, dim=0) - math.log(k)
    return log_px, ll_all.mean(dim=0), kl_all.mean(dim=0)


def prepare_inputs(images: np.ndarray, binarize: bool, seed: int = 0) -> torch.Tensor:
    """uint8 images -> the x the model is scored on (binarized once for Bernoulli models)."""
    return torch.from_numpy(binarize_fixed(images, seed) if binarize else to_unit(images))


@torch.no_grad()
def evaluate(
    model: VAE,
    x: torch.Tensor,
    k: int = 1000,
    batch_size: int = 100,
    seed: int = 0,
    progress: bool = True,
) -> EvalResult:
    """Score ``x`` (already binarized where the likelihood needs it) by ELBO and IW-NLL."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    log_px, log_lik, mus, kls, sq_err = [], [], [], [], 0.0
    for start in tqdm(
        range(0, len(x), batch_size), desc=f"evaluate K={k}", disable=not progress, mininterval=2.0
    ):
        xb = x[start : start + batch_size].to(device)
        mu, logvar = model.encode(xb)
        px, ll, kl_estimate = importance_weighted(model, xb, k, generator, posterior=(mu, logvar))
        log_px.append(px)
        log_lik.append(ll)
        mus.append(mu)
        # the KL in closed form where there is one (the standard prior), else from the samples
        kls.append(kl_per_dim(mu, logvar) if model.cfg.prior == "standard" else kl_estimate[:, None])
        sq_err += (model.mean_image(model.decode(mu)) - xb).pow(2).mean(dim=(1, 2, 3)).sum().item()
    kl_dims = torch.cat(kls)
    kl = kl_dims.sum(dim=1)
    rec = torch.cat(log_lik)
    mu_all = torch.cat(mus)
    active = int((mu_all.var(dim=0, unbiased=True) > ACTIVE_UNIT_THRESHOLD).sum())
    return EvalResult(
        test_elbo_nats=float((rec - kl).mean()),
        test_nll_nats=float(-torch.cat(log_px).mean()),
        nll_importance_samples=k,
        active_units=active,
        latent_dim=model.cfg.latent_dim,
        kl_nats=float(kl.mean()),
        kl_per_dim=[round(v, 4) for v in kl_dims.mean(dim=0).tolist()]
        if model.cfg.prior == "standard"
        else [],
        reconstruction_nats=float(-rec.mean()),
        reconstruction_mse=sq_err / len(x),
        n_images=len(x),
        seconds=time.perf_counter() - t0,
    )
