"""Every training knob in one typed place. The CLI is generated from these fields and the whole
config is saved with each run (``config.json``) and inside each checkpoint."""

from __future__ import annotations

import argparse
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from common.preprocessing import Preprocessing
from training.model import VAEConfig


def knob(default: Any, help: str, **choices: Any) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help, **choices})
    return field(default=default, metadata={"help": help, **choices})


@dataclass
class TrainConfig:
    # data
    dataset: str = knob("mnist", "data source", choices=("mnist", "idx", "folder", "digits"))
    data_dir: str | None = knob(None, "folder of IDX files or images (idx, folder)")
    cache_dir: str = knob("data", "cache folder for downloaded datasets")
    channels: int = knob(1, "image channels for folder data: 1 grayscale, 3 RGB", choices=(1, 3))
    height: int = knob(28, "image height for folder data")
    width: int = knob(28, "image width for folder data")
    invert: bool = knob(False, "invert folder images (dark strokes on a light ground)")
    binarize: bool = knob(True, "dynamic binarization: a fresh Bernoulli draw per batch")
    # model
    architecture: str = knob("mlp", "encoder/decoder family", choices=("mlp", "conv"))
    latent_dim: int = knob(32, "latent dimension D")
    hidden: list[int] = knob([512, 512], "MLP hidden widths")
    conv_channels: list[int] = knob([32, 64], "conv channels per stride-2 layer")
    conv_hidden: int = knob(512, "dense width between convs and z")
    likelihood: str = knob("bernoulli", "p(x|z)", choices=("bernoulli", "gaussian"))
    gaussian_sigma: float = knob(0.1, "sigma of a gaussian p(x|z) (initial value if learned)")
    learn_sigma: bool = knob(False, "learn the gaussian sigma")
    # objective: loss = reconstruction + beta * KL
    beta: float = knob(1.0, "weight of the KL term (beta-VAE); 1 is the true ELBO")
    warmup_epochs: float = knob(0.0, "epochs over which beta rises linearly from 0")
    free_bits: float = knob(0.0, "minimum KL in nats per latent dimension (0 = off)")
    # optimisation
    epochs: int = knob(50, "training epochs")
    batch_size: int = knob(128, "global batch size (split across processes)")
    lr: float = knob(1e-3, "Adam learning rate")
    min_lr: float = knob(1e-3, "final learning rate of the cosine schedule (= lr: constant)")
    grad_clip: float = knob(0.0, "clip the gradient norm to this (0 = off)")
    # run
    seed: int = knob(0, "random seed")
    run_dir: str = knob("runs/mnist", "where checkpoints, metrics and pictures go")
    device: str = knob("auto", "auto, cpu or cuda")
    threads: int = knob(0, "torch CPU threads (0 = torch's default)")
    eval_batch_size: int = knob(1000, "batch size for validation")

    def __post_init__(self) -> None:
        for f in fields(self):
            allowed = f.metadata.get("choices")
            if allowed and getattr(self, f.name) not in allowed:
                raise ValueError(f"{f.name} must be one of {allowed}, got {getattr(self, f.name)!r}")
        if self.likelihood == "gaussian":
            self.binarize = False  # binarization only makes sense for a Bernoulli likelihood
        for name in ("epochs", "batch_size", "latent_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def model_config(self, image_shape: tuple[int, int, int]) -> VAEConfig:
        return VAEConfig(
            image_shape=image_shape,
            latent_dim=self.latent_dim,
            architecture=self.architecture,  # type: ignore[arg-type]
            hidden=tuple(self.hidden),
            channels=tuple(self.conv_channels),
            conv_hidden=self.conv_hidden,
            likelihood=self.likelihood,  # type: ignore[arg-type]
            gaussian_sigma=self.gaussian_sigma,
            learn_sigma=self.learn_sigma,
        )

    def preprocessing(self, image_shape: tuple[int, int, int] | None = None) -> Preprocessing:
        """How an image file becomes x: for reading a folder (from --channels/--height/--width), or,
        given a trained model's image shape, the preprocessing its manifest records."""
        channels, height, width = image_shape or (self.channels, self.height, self.width)
        return Preprocessing(channels, height, width, invert=self.invert)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")


def _base_type(tp: Any) -> Any:
    """str | None -> str; list[int] stays list[int]."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per TrainConfig field. Defaults are suppressed so that only the options a user
    gave override a config (needed for --resume)."""
    hints = typing.get_type_hints(TrainConfig)
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        tp = _base_type(hints[f.name])
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} (default: {default})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is list:
            parser.add_argument(flag, type=typing.get_args(tp)[0], nargs="+", **kwargs)
        else:
            parser.add_argument(flag, type=tp, choices=f.metadata.get("choices"), **kwargs)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in fields(TrainConfig)}
    return {k: v for k, v in vars(args).items() if k in names}
