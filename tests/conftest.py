"""Shared fixtures: small real data (scikit-learn's digits) and tiny trained runs."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digit_images() -> np.ndarray:
    """Twelve real handwritten digits, uint8 [12, 28, 28], white strokes on black like MNIST."""
    from sklearn.datasets import load_digits

    small = load_digits().images[:12] * (255 / 16)
    return np.stack(
        [
            np.asarray(Image.fromarray(d.astype(np.uint8)).resize((28, 28), Image.Resampling.BILINEAR))
            for d in small
        ]
    )


def encode_image(pixels: np.ndarray, fmt: str, mode: str = "L") -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buf, format=fmt)
    return buf.getvalue()


def tiny_config(run_dir: Path, **overrides: object):
    """A seconds-long real training run on the digits."""
    from training.config import TrainConfig

    settings: dict[str, Any] = dict(
        dataset="digits",
        epochs=3,
        batch_size=64,
        hidden=[32],
        latent_dim=4,
        conv_channels=[8, 16],
        conv_hidden=32,
        run_dir=str(run_dir),
        eval_batch_size=500,
    )
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("run") / "digits", warmup_epochs=1.0))


@pytest.fixture(scope="session")
def model_repository(trained_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real model repository built from the tiny digits run: digits/2 and digits/10."""
    from training.checkpoint import load_model
    from training.export import export_model

    models = tmp_path_factory.mktemp("models")
    model, cfg, _ = load_model(trained_run / "best.pt")
    for version in ("2", "10"):
        export_model(
            model,
            models,
            "digits",
            version,
            preprocessing=cfg.preprocessing(model.cfg.image_shape),
            metrics={"test_nll_nats": 30.0},
            training=cfg.to_dict(),
        )
    return models


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
