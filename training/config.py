"""Every training knob in one typed place: ``TrainConfig`` holds the run's knobs and, nested, the
model's own ``VAEConfig``. The CLI is generated from both, and the whole config is saved with each
run (``config.json``) and inside each checkpoint."""

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
from training.model import VAEConfig, knob

# model knobs the data sets, not the user
DERIVED = frozenset({"image_shape"})


@dataclass
class TrainConfig:
    model: VAEConfig = field(default_factory=VAEConfig)
    # data
    dataset: str = knob("mnist", "data source", choices=("mnist", "idx", "folder", "digits"))
    data_dir: str | None = knob(None, "folder of IDX files or images (idx, folder)")
    cache_dir: str = knob("data", "cache folder for downloaded datasets")
    channels: int = knob(1, "image channels for folder data: 1 grayscale, 3 RGB", choices=(1, 3))
    height: int = knob(28, "image height for folder data")
    width: int = knob(28, "image width for folder data")
    invert: bool = knob(False, "invert folder images (dark strokes on a light ground; --normalize none)")
    normalize: str = knob(
        "auto",
        "how images become x, in folders and uploads: mnist (polarity, background, contrast and "
        "geometry as MNIST's digits were made), none, or auto (mnist for 1x28x28 images)",
        choices=("auto", "mnist", "none"),
    )
    binarize: bool = knob(True, "dynamic binarization: a fresh Bernoulli draw per batch")
    # objective: loss = reconstruction + beta * KL
    beta: float = knob(1.0, "weight of the KL term (beta-VAE); 1 is the true ELBO")
    warmup_epochs: float = knob(0.0, "epochs over which beta rises linearly from 0")
    free_bits: float = knob(0.0, "minimum KL in nats per latent dimension (0 = off)")
    iw_samples: int = knob(1, "k, samples of z per image in the loss: 1 the ELBO, more the IWAE bound")
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
        for owner in (self, self.model):
            for f in fields(owner):
                allowed = f.metadata.get("choices")
                if allowed and getattr(owner, f.name) not in allowed:
                    raise ValueError(f"{f.name} must be one of {allowed}, got {getattr(owner, f.name)!r}")
        if self.model.likelihood == "gaussian":
            self.binarize = False  # binarization only makes sense for a Bernoulli likelihood
        for name in ("epochs", "batch_size", "iw_samples"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def preprocessing(self, image_shape: tuple[int, int, int] | None = None) -> Preprocessing:
        """How an image file becomes x: for reading a folder (from --channels/--height/--width), or,
        given a trained model's image shape, the preprocessing its manifest records."""
        channels, height, width = image_shape or (self.channels, self.height, self.width)
        normalize = self.normalize
        if normalize == "auto":
            normalize = "mnist" if (channels, height, width) == (1, 28, 28) else "none"
        return Preprocessing(channels, height, width, invert=self.invert, normalize=normalize)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return cls(**{**d, "model": VAEConfig.from_dict(d["model"])})

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def _knobs() -> list[tuple[Any, dataclasses.Field]]:
    """(owner class, field) of every knob the CLI offers: the run's, then the model's."""
    run = [(TrainConfig, f) for f in fields(TrainConfig) if f.name != "model"]
    return run + [(VAEConfig, f) for f in fields(VAEConfig) if f.name not in DERIVED]


def _base_type(tp: Any) -> Any:
    """str | None -> str; list[int] stays list[int]."""
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return next(a for a in typing.get_args(tp) if a is not type(None))
    return tp


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per knob. Defaults are suppressed so that only the options a user gave
    override a config (needed for --resume)."""
    hints = typing.get_type_hints(TrainConfig) | typing.get_type_hints(VAEConfig)
    defaults = {f.name: getattr(owner(), f.name) for owner, f in _knobs()}
    for _, f in _knobs():
        tp = _base_type(hints[f.name])
        default = defaults[f.name]
        shown = " ".join(map(str, default)) if isinstance(default, tuple | list) else default
        help_text = f"{f.metadata['help']} (default: {shown})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": argparse.SUPPRESS, "help": help_text}
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) in (list, tuple):
            parser.add_argument(flag, type=typing.get_args(tp)[0], nargs="+", **kwargs)
        elif typing.get_origin(tp) is typing.Literal:
            parser.add_argument(flag, choices=typing.get_args(tp), **kwargs)
        else:
            parser.add_argument(flag, type=tp, choices=f.metadata.get("choices"), **kwargs)


def given_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The knobs the user gave on the command line, by name."""
    names = {f.name for _, f in _knobs()}
    return {k: v for k, v in vars(args).items() if k in names}


def apply_overrides(cfg: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``cfg`` with the given knobs changed, each in the run's or the model's part."""
    model_names = {f.name for f in fields(VAEConfig)}
    model: dict[str, Any] = {
        k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if k in model_names
    }
    run = {k: v for k, v in overrides.items() if k not in model_names}
    return dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **model), **run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    return apply_overrides(TrainConfig(), given_overrides(args))
