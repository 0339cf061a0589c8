"""The loss against hand-computed values and the theory's identities."""

from __future__ import annotations

import math

import pytest
import torch

from training.evaluate import importance_weighted
from training.loss import beta_at, elbo, kl_divergence, log_likelihood, objective, vae_loss
from training.model import VAE, VAEConfig, log_mixture, log_normal


def test_kl_is_zero_at_the_prior() -> None:
    mu, logvar = torch.zeros(3, 5), torch.zeros(3, 5)
    assert torch.equal(kl_divergence(mu, logvar), torch.zeros(3))


def test_kl_matches_hand_computation() -> None:
    # 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2) per dimension: 0.5 * 1 and 0.5 * (4 + 4 - 1 - log 4)
    mu = torch.tensor([[1.0, 2.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)]])
    expected = 0.5 * 1.0 + 0.5 * (4 + 4 - 1 - math.log(4))
    assert kl_divergence(mu, logvar).item() == pytest.approx(expected, rel=1e-6)


def test_closed_form_kl_agrees_with_monte_carlo() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.tensor([0.7, -1.3, 0.1])
    logvar = torch.tensor([-1.0, 0.5, -2.5])
    z = mu + torch.exp(0.5 * logvar) * torch.randn(400_000, 3, generator=g, dtype=torch.float64).float()
    # KL = E_q[log q(z) - log p(z)]
    samples = log_normal(z, mu, logvar) - log_normal(z, torch.zeros(3), torch.zeros(3))
    estimate, stderr = samples.mean().item(), samples.std().item() / math.sqrt(len(samples))
    closed = kl_divergence(mu[None], logvar[None]).item()
    assert abs(estimate - closed) < 4 * stderr


def test_bernoulli_log_likelihood_by_hand() -> None:
    # sigmoid(0) = 1/2 for every pixel: log p(x|z) = 4 * log(1/2) whatever x is
    x = torch.tensor([[[[0.0, 1.0], [1.0, 0.0]]]])
    assert log_likelihood(x, torch.zeros_like(x), "bernoulli", torch.tensor(0.0)).item() == pytest.approx(
        4 * math.log(0.5)
    )
    # a confident correct pixel costs log(sigmoid(3)) each
    logits = torch.tensor([[[[-3.0, 3.0], [3.0, -3.0]]]])
    expected = 4 * math.log(1 / (1 + math.exp(-3)))
    assert log_likelihood(x, logits, "bernoulli", torch.tensor(0.0)).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_gaussian_log_likelihood_by_hand() -> None:
    logits = torch.zeros(1, 1, 1, 2)  # mean 0.5 everywhere
    x = torch.tensor([[[[0.5, 0.7]]]])
    sigma = 0.1
    expected = sum(
        -0.5 * ((v - 0.5) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi) for v in (0.5, 0.7)
    )
    got = log_likelihood(x, logits, "gaussian", torch.tensor(math.log(sigma))).item()
    assert got == pytest.approx(expected, rel=1e-5)


def test_loss_is_reconstruction_plus_beta_kl() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.bernoulli(torch.full((4, 1, 3, 3), 0.5), generator=g)
    logits, mu, logvar = (
        torch.randn(4, 1, 3, 3, generator=g),
        torch.randn(4, 2, generator=g),
        torch.randn(4, 2, generator=g),
    )
    terms = vae_loss(x, logits, mu, logvar, beta=0.25)
    rec = -log_likelihood(x, logits, "bernoulli", torch.tensor(0.0)).mean()
    kl = kl_divergence(mu, logvar).mean()
    assert terms.reconstruction.item() == pytest.approx(rec.item())
    assert terms.kl.item() == pytest.approx(kl.item())
    assert terms.loss.item() == pytest.approx(rec.item() + 0.25 * kl.item())
    assert terms.neg_elbo.item() == pytest.approx(
        -elbo(x, logits, mu, logvar, "bernoulli", torch.tensor(0.0)).mean().item()
    )


def test_free_bits_floor_each_dimension_but_report_the_true_kl() -> None:
    x = torch.zeros(2, 1, 1, 1)
    logits = torch.zeros_like(x)
    mu = torch.tensor([[0.1, 3.0], [0.1, 3.0]])  # dimension 0 carries KL 0.005, dimension 1 carries 4.5
    logvar = torch.zeros(2, 2)
    terms = vae_loss(x, logits, mu, logvar, free_bits=0.5)
    assert terms.kl.item() == pytest.approx(0.005 + 4.5)
    assert (terms.loss - terms.reconstruction).item() == pytest.approx(0.5 + 4.5)


def test_linear_warmup() -> None:
    assert [beta_at(s, 4, 2.0) for s in (0, 1, 2, 4, 10)] == [0.0, 0.5, 1.0, 2.0, 2.0]
    assert beta_at(0, 0, 0.7) == 0.7


def test_gradients_flow_through_mu_and_sigma() -> None:
    mu = torch.tensor([[0.3, -0.2]], requires_grad=True)
    logvar = torch.tensor([[0.1, -0.4]], requires_grad=True)
    torch.manual_seed(0)
    z = VAE.reparameterize(mu, logvar)
    z.sum().backward()
    eps = (z.detach() - mu.detach()) / torch.exp(0.5 * logvar.detach())
    assert torch.allclose(mu.grad, torch.ones_like(mu))  # dz/dmu = 1
    assert torch.allclose(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)  # dz/dlogvar


def test_every_encoder_output_gets_a_gradient_from_the_loss() -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(1, 8, 8), latent_dim=3, hidden=(16,)))
    x = torch.bernoulli(torch.rand(5, 1, 8, 8))
    logits, _, mu, logvar, _ = model(x)
    vae_loss(x, logits[0], mu, logvar).loss.backward()
    head = model.encoder.head.weight.grad  # rows 0..2 produce mu, rows 3..5 produce logvar
    assert head is not None and (head.abs().sum(dim=1) > 0).all()


def _one_dim_model() -> VAE:
    torch.manual_seed(3)
    model = VAE(VAEConfig(image_shape=(1, 4, 4), latent_dim=1, hidden=(8,)))
    return model.eval()


@torch.no_grad()
def _exact_log_px(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log integral p(x|z) p(z) dz by quadrature on a fine grid (D = 1)."""
    z = torch.linspace(-10, 10, 40_001, dtype=torch.float64)
    logits = model.decode(z[:, None].float())
    ll = torch.stack(
        [log_likelihood(xi.expand(len(z), *xi.shape), logits, "bernoulli", model.log_sigma) for xi in x]
    )
    log_prior = -0.5 * (math.log(2 * math.pi) + z**2)
    dz = (z[1] - z[0]).item()
    return torch.logsumexp(ll.double() + log_prior, dim=1) + math.log(dz)


def test_importance_weighted_bound_converges_to_the_exact_likelihood_and_exceeds_the_elbo() -> None:
    model = _one_dim_model()
    x = torch.bernoulli(torch.rand(6, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
    exact = _exact_log_px(model, x)
    iw, expected_ll, _ = importance_weighted(model, x, k=20_000, generator=torch.Generator().manual_seed(0))
    mu, logvar = model.encode(x)
    elbo_estimate = expected_ll - kl_divergence(mu, logvar)
    assert torch.all(elbo_estimate <= iw.double())  # Jensen: ELBO <= IW bound, with the same samples
    assert torch.all(iw.double() <= exact + 0.01)  # a lower bound (up to Monte Carlo noise)
    assert torch.allclose(iw.double(), exact, atol=0.05)  # ... that is tight with many samples


def test_the_vamp_prior_is_the_mixture_of_the_posteriors_at_the_pseudo_inputs() -> None:
    torch.manual_seed(1)
    model = VAE(VAEConfig(image_shape=(1, 4, 4), latent_dim=3, hidden=(8,), prior="vamp", pseudo_inputs=5))
    z = torch.randn(7, 3)
    means, logvars = model.encode(torch.sigmoid(model.pseudo_logits))
    direct = torch.stack(
        [
            torch.logsumexp(torch.stack([log_normal(zi, means[k], logvars[k]) for k in range(5)]), 0)
            - math.log(5)
            for zi in z
        ]
    )  # log 1/K sum_k N(z; mu_k, sigma_k^2), one component at a time
    assert torch.allclose(model.log_prior(z), direct, atol=1e-4)
    # and by hand for one component in one dimension: N(0.5; 0, e^0) = exp(-0.125) / sqrt(2 pi)
    one = log_mixture(torch.tensor([[0.5]]), torch.zeros(1, 1), torch.zeros(1, 1))
    assert one.item() == pytest.approx(-0.125 - 0.5 * math.log(2 * math.pi), abs=1e-6)


def test_the_iw_bound_is_above_the_elbo_and_tightens_with_k() -> None:
    """E[L_k] is at least the ELBO and grows with k (Burda et al. 2015, theorem 1), for either prior."""
    for prior in ("standard", "vamp"):
        torch.manual_seed(2)
        cfg = VAEConfig(image_shape=(1, 4, 4), latent_dim=2, hidden=(8,), prior=prior, pseudo_inputs=4)
        model = VAE(cfg).eval()
        x = torch.bernoulli(torch.rand(64, 1, 4, 4, generator=torch.Generator().manual_seed(0)))
        bounds = {}
        with torch.no_grad():
            for k in (1, 5, 50):
                # the mean over many draws of the bound, so that the order holds beyond the noise
                draws = [-objective(x, model(x, k), prior=prior).loss for _ in range(200)]
                bounds[k] = torch.stack(draws).mean().item()
        assert bounds[1] < bounds[5] < bounds[50], (prior, bounds)
