"""The VAE itself: encoder -> (mu, logvar), reparameterization, decoder -> logits, and its prior
p(z): the standard normal, or the VampPrior (Tomczak & Welling 2018), a mixture of the encoder's own
posteriors at K learned pseudo-inputs, p(z) = 1/K sum_k q(z | u_k).

Nothing else lives here: the loss is in ``loss.py``, training in ``train.py``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import torch
from torch import nn

Architecture = Literal["mlp", "conv"]
Likelihood = Literal["bernoulli", "gaussian"]
Prior = Literal["standard", "vamp"]
LOG_2PI = math.log(2 * math.pi)


def knob(default: Any, help: str, **choices: Any) -> Any:
    """A config field with its command-line help (and allowed ``choices``) in its metadata."""
    if isinstance(default, list | tuple):
        return field(default_factory=lambda: type(default)(default), metadata={"help": help, **choices})
    return field(default=default, metadata={"help": help, **choices})


@dataclass(frozen=True)
class VAEConfig:
    image_shape: tuple[int, int, int] = knob((1, 28, 28), "C, H, W of x (set from the data)")
    latent_dim: int = knob(32, "latent dimension D")
    architecture: Architecture = knob("mlp", "encoder/decoder family", choices=("mlp", "conv"))
    hidden: tuple[int, ...] = knob((512, 512), "MLP hidden widths (the decoder mirrors them)")
    conv_channels: tuple[int, ...] = knob((32, 64), "conv channels per stride-2 layer")
    conv_hidden: int = knob(512, "dense width between convs and z")
    likelihood: Likelihood = knob("bernoulli", "p(x|z)", choices=("bernoulli", "gaussian"))
    gaussian_sigma: float = knob(0.1, "sigma of a gaussian p(x|z) (initial value if learned)")
    learn_sigma: bool = knob(False, "learn the gaussian sigma")
    prior: Prior = knob("standard", "p(z): standard normal, or vamp (mixture at learned pseudo-inputs)",
                        choices=("standard", "vamp"))  # fmt: skip
    pseudo_inputs: int = knob(500, "K, the VampPrior's pseudo-inputs (components)")

    def __post_init__(self) -> None:
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be >= 1, got {self.latent_dim}")
        if self.architecture == "conv":
            stride = 2 ** len(self.conv_channels)
            _, h, w = self.image_shape
            if h % stride or w % stride:
                raise ValueError(
                    f"conv architecture with {len(self.conv_channels)} layers needs H and W "
                    f"divisible by {stride}, got {h}x{w}"
                )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> VAEConfig:
        d = dict(d)
        for key in ("image_shape", "hidden", "conv_channels"):
            d[key] = tuple(d[key])
        return cls(**d)


def _mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class MLPEncoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        n_pixels = math.prod(cfg.image_shape)
        self.body = nn.Sequential(nn.Flatten(), _mlp([n_pixels, *cfg.hidden]), nn.ReLU())
        self.head = nn.Linear(cfg.hidden[-1], 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class MLPDecoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.image_shape = cfg.image_shape
        self.net = _mlp([cfg.latent_dim, *reversed(cfg.hidden), math.prod(cfg.image_shape)])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, *self.image_shape)


class ConvEncoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        c, h, w = cfg.image_shape
        layers: list[nn.Module] = []
        for c_out in cfg.conv_channels:
            layers += [nn.Conv2d(c, c_out, kernel_size=4, stride=2, padding=1), nn.ReLU()]
            c = c_out
        scale = 2 ** len(cfg.conv_channels)
        flat = c * (h // scale) * (w // scale)
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(flat, cfg.conv_hidden), nn.ReLU())
        self.head = nn.Linear(cfg.conv_hidden, 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class ConvDecoder(nn.Module):
    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        c_img, h, w = cfg.image_shape
        scale = 2 ** len(cfg.conv_channels)
        self.grid = (cfg.conv_channels[-1], h // scale, w // scale)
        self.dense = nn.Sequential(
            nn.Linear(cfg.latent_dim, cfg.conv_hidden),
            nn.ReLU(),
            nn.Linear(cfg.conv_hidden, math.prod(self.grid)),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        outs = [*reversed(cfg.conv_channels[:-1]), c_img]
        c = cfg.conv_channels[-1]
        for i, c_out in enumerate(outs):
            layers.append(nn.ConvTranspose2d(c, c_out, kernel_size=4, stride=2, padding=1))
            if i < len(outs) - 1:
                layers.append(nn.ReLU())
            c = c_out
        self.deconv = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.deconv(self.dense(z).view(-1, *self.grid))


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return (-0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp())).sum(dim=-1)


def log_mixture(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log 1/K sum_k N(z; means_k, diag(exp(logvars_k))) over the last dimension of z [..., D],
    for K components [K, D]. The squared distances come from three products ([..., K] in memory, not
    [..., K, D]): sum_d (z - m)^2 / v = z^2 . 1/v - 2 z . m/v + m^2 . 1/v."""
    precision = torch.exp(-logvars)  # [K, D]
    flat = z.reshape(-1, z.shape[-1])
    quadratic = (
        flat.pow(2) @ precision.T - 2 * flat @ (means * precision).T + (means.pow(2) * precision).sum(dim=1)
    )
    per_component = -0.5 * (z.shape[-1] * LOG_2PI + logvars.sum(dim=1) + quadratic)  # [N, K]
    return (torch.logsumexp(per_component, dim=1) - math.log(len(means))).view(z.shape[:-1])


class VAE(nn.Module):
    """q(z|x) = N(mu, diag(exp(logvar))), p(z) standard normal or VampPrior, p(x|z) from the
    decoder's logits."""

    def __init__(self, cfg: VAEConfig) -> None:
        super().__init__()
        self.cfg = cfg
        if cfg.architecture == "mlp":
            self.encoder: nn.Module = MLPEncoder(cfg)
            self.decoder: nn.Module = MLPDecoder(cfg)
        else:
            self.encoder = ConvEncoder(cfg)
            self.decoder = ConvDecoder(cfg)
        # log sigma of a gaussian p(x|z); a buffer when fixed so checkpoints carry it either way
        log_sigma = torch.tensor(math.log(cfg.gaussian_sigma))
        if cfg.likelihood == "gaussian" and cfg.learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        if cfg.prior == "vamp":
            # pseudo-inputs u_k = sigmoid(logits): images in [0, 1], as the encoder is used to
            self.pseudo_logits = nn.Parameter(0.1 * torch.randn(cfg.pseudo_inputs, *cfg.image_shape))

    def init_pseudo_inputs(self, x: torch.Tensor) -> None:
        """Start the pseudo-inputs at these images (in [0, 1]), a little noisy: as data-like as they end."""
        with torch.no_grad():
            x = x[: self.cfg.pseudo_inputs].clamp(0.05, 0.95)
            self.pseudo_logits.copy_(torch.logit(x) + 0.1 * torch.randn_like(x))

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The VampPrior's components: (means, logvars), each [K, D], the posteriors at u_k."""
        return self.encode(torch.sigmoid(self.pseudo_logits))

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws of z ~ p(z) (on the CPU's generator, then moved where the model is)."""
        device = self.log_sigma.device
        eps = torch.randn(n, self.cfg.latent_dim, generator=generator).to(device)
        if self.cfg.prior == "standard":
            return eps
        means, logvars = self.prior_components()
        picks = torch.randint(self.cfg.pseudo_inputs, (n,), generator=generator).to(device)
        return means[picks] + torch.exp(0.5 * logvars[picks]) * eps

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) over the last dimension: [...]."""
        if self.cfg.prior == "standard":
            return log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        means, logvars = self.prior_components()
        return log_mixture(z, means, logvars)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        # z = mu + sigma * eps keeps the randomness outside the path gradients flow through
        eps = torch.randn_like(mu)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of p(x|z); the mean image is ``mean_image(logits)``."""
        return self.decoder(z)

    @staticmethod
    def mean_image(logits: torch.Tensor) -> torch.Tensor:
        # both likelihoods keep the mean in [0, 1] through a sigmoid
        return torch.sigmoid(logits)

    def forward(self, x: torch.Tensor, samples: int = 1) -> tuple[torch.Tensor, ...]:
        """``samples`` z ~ q(z|x) per image, through the decoder and the prior (in forward, so that
        DistributedDataParallel sees every parameter used): logits [S, B, C, H, W], z [S, B, D],
        mu and logvar [B, D], log p(z) [S, B]."""
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu.expand(samples, *mu.shape), logvar.expand(samples, *logvar.shape))
        logits = self.decode(z.reshape(-1, z.shape[-1])).view(samples, *x.shape)
        return logits, z, mu, logvar, self.log_prior(z)
