"""A checkpoint: the weights and the optimiser's and schedule's state, with the full config, so that
evaluation and export rebuild the model and a run resumes without guessing (nanoGPT's
``model_args`` + ``config``). Saved as tensors and plain values only, and loaded with
``weights_only=True``: a checkpoint file can never run code."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from training.config import TrainConfig
from training.model import VAE


@dataclass
class Checkpoint:
    config: TrainConfig  # the run's knobs, the model's config nested in it
    model: dict[str, torch.Tensor]  # the VAE's state_dict
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    epoch: int  # epochs completed
    best_valid_neg_elbo: float
    wall_seconds: float  # training time so far, validation excluded
    world_size: int
    dataset: str
    versions: dict[str, str]  # python, torch, numpy
    rng: torch.Tensor = field(default_factory=torch.get_rng_state)
    shuffle_rng: torch.Tensor | None = None  # the generator of a single process's epoch shuffles

    def save(self, path: Path) -> None:
        """Write to a temporary file, then rename: a crash never leaves a half checkpoint."""
        state = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        state["config"] = self.config.to_dict()
        tmp = Path(path).with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> Checkpoint:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no checkpoint at {path}")
        state = torch.load(path, map_location="cpu", weights_only=True)
        return cls(**{**state, "config": TrainConfig.from_dict(state["config"])})

    def build_model(self) -> VAE:
        """The trained VAE, in eval mode on the CPU."""
        model = VAE(self.config.model)
        model.load_state_dict(self.model)
        return model.eval()
