"""Tiny real training runs on scikit-learn's digits: every test here trains with torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from training.config import TrainConfig, apply_overrides


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/training/" in str(item.fspath):
            item.add_marker(pytest.mark.torch)


def tiny_config(run_dir: Path, **overrides: object) -> TrainConfig:
    """A seconds-long real training run on the digits."""
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
    return apply_overrides(TrainConfig(), settings)


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from training.train import train

    return train(tiny_config(tmp_path_factory.mktemp("run") / "digits", warmup_epochs=1.0))
