"""Checkpoints hold the model weights with both configs, so evaluation and export rebuild the
model without guessing (nanoGPT's ``model_args`` + ``config``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from training.config import TrainConfig
from training.model import VAE, VAEConfig


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write to a temporary file, then rename: a crash never leaves a half checkpoint."""
    tmp = Path(path).with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


def load_model(path: Path) -> tuple[VAE, TrainConfig, dict[str, Any]]:
    """Rebuild the trained VAE from a checkpoint (eval mode, CPU)."""
    state = load_checkpoint(path)
    model = VAE(VAEConfig.from_dict(state["model_config"]))
    model.load_state_dict(state["model"])
    model.eval()
    return model, TrainConfig(**state["train_config"]), state
