"""The VAE itself: encoder -> (mu, logvar), reparameterization, decoder -> logits.

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


class VAE(nn.Module):
    """q(z|x) = N(mu, diag(exp(logvar))), p(z) = N(0, I), p(x|z) from the decoder's logits."""

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

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar
