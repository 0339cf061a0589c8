"""The VAE objective as the tutorial derives it, and its importance-weighted tightening.

    ELBO(x) = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))         <= log p(x)
    loss    = -E_q[log p(x|z)] + beta * KL = reconstruction + beta * KL

The KL is in closed form for the standard normal prior, and a one-sample estimate, log q(z|x) -
log p(z), for the VampPrior (a mixture has none). With k > 1 samples the loss is the negative
importance-weighted bound (IWAE, Burda et al. 2015), tighter than the ELBO and tightening with k:

    L_k(x) = E[log 1/k sum_i p(x, z_i) / q(z_i|x)],   z_i ~ q(z|x)

All terms are summed over pixels and latent dimensions (nats per image), then averaged over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from training.model import log_normal

LOG_2PI = math.log(2 * math.pi)


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL(N(mu, sigma^2) || N(0, 1)) for each latent dimension: [B, D]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || p(z)) per example: [B]."""
    return kl_per_dim(mu, logvar).sum(dim=-1)


def log_likelihood(
    x: torch.Tensor, logits: torch.Tensor, likelihood: str, log_sigma: torch.Tensor
) -> torch.Tensor:
    """log p(x|z) per example, summed over pixels: [B]. ``logits`` is the decoder output."""
    if likelihood == "bernoulli":
        # log Bernoulli(x; sigmoid(logits)) = -BCE with logits, exact and stable
        ll = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    elif likelihood == "gaussian":
        mean = torch.sigmoid(logits)
        ll = -0.5 * ((x - mean) / log_sigma.exp()).pow(2) - log_sigma - 0.5 * LOG_2PI
    else:
        raise ValueError(f"unknown likelihood {likelihood!r}")
    return ll.flatten(start_dim=1).sum(dim=-1)


def elbo(
    x: torch.Tensor,
    logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    likelihood: str,
    log_sigma: torch.Tensor,
) -> torch.Tensor:
    """Single-sample ELBO per example (logits decoded from one z ~ q(z|x)): [B]."""
    return log_likelihood(x, logits, likelihood, log_sigma) - kl_divergence(mu, logvar)


@dataclass
class LossTerms:
    loss: torch.Tensor  # what is minimised: reconstruction + beta * (free-bits) KL
    reconstruction: torch.Tensor  # -E_q[log p(x|z)], nats per image
    kl: torch.Tensor  # the true KL, nats per image (free bits do not change what is reported)

    @property
    def neg_elbo(self) -> torch.Tensor:
        return self.reconstruction + self.kl


def vae_loss(
    x: torch.Tensor,
    logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    *,
    likelihood: str = "bernoulli",
    log_sigma: torch.Tensor | None = None,
    beta: float = 1.0,
    free_bits: float = 0.0,
) -> LossTerms:
    """-ELBO with beta weighting and free bits (Kingma et al. 2016): each latent dimension's
    batch-mean KL counts at least ``free_bits`` nats, so the optimiser gains nothing by
    collapsing it below that."""
    if log_sigma is None:
        log_sigma = torch.zeros((), device=x.device)
    reconstruction = -log_likelihood(x, logits, likelihood, log_sigma).mean()
    kl_dims = kl_per_dim(mu, logvar).mean(dim=0)
    kl = kl_dims.sum()
    kl_penalty = kl_dims.clamp(min=free_bits).sum() if free_bits > 0 else kl
    return LossTerms(reconstruction + beta * kl_penalty, reconstruction, kl)


def objective(
    x: torch.Tensor,
    outputs: tuple[torch.Tensor, ...],
    *,
    prior: str,
    likelihood: str = "bernoulli",
    log_sigma: torch.Tensor | None = None,
    beta: float = 1.0,
    free_bits: float = 0.0,
) -> LossTerms:
    """The training loss from a forward pass of ``samples`` z per image (``VAE.forward``): the ELBO
    with one sample (closed-form KL for the standard prior), the IW bound with more."""
    logits, z, mu, logvar, log_pz = outputs
    if log_sigma is None:
        log_sigma = torch.zeros((), device=x.device)
    samples = len(z)
    if samples == 1 and prior == "standard":
        return vae_loss(
            x,
            logits[0],
            mu,
            logvar,
            likelihood=likelihood,
            log_sigma=log_sigma,
            beta=beta,
            free_bits=free_bits,
        )
    log_px_z = log_likelihood(
        x.expand(samples, *x.shape).reshape(-1, *x.shape[1:]),
        logits.reshape(-1, *x.shape[1:]),
        likelihood,
        log_sigma,
    ).view(samples, -1)
    kl = log_normal(z, mu, logvar) - log_pz  # one-sample estimates of the KL, [S, B]
    reconstruction, kl_mean = -log_px_z.mean(), kl.mean()
    if samples == 1:
        return LossTerms(reconstruction + beta * kl_mean, reconstruction, kl_mean)
    log_w = log_px_z - beta * kl  # beta < 1 only while warming up
    bound = torch.logsumexp(log_w, dim=0) - math.log(samples)
    return LossTerms(-bound.mean(), reconstruction, kl_mean)


def beta_at(step: int, total_warmup_steps: int, beta: float) -> float:
    """Linear KL warm-up: beta grows from 0 to ``beta`` over the first ``total_warmup_steps``."""
    if total_warmup_steps <= 0:
        return beta
    return beta * min(1.0, step / total_warmup_steps)
