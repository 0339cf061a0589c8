"""Training runs for real on the digits: outputs, resume and data-parallel with torchrun."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import ROOT
from tests.training.conftest import tiny_config
from training.checkpoint import Checkpoint
from training.train import train


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_a_run_writes_config_metrics_checkpoints_and_pictures(trained_run: Path) -> None:
    for name in (
        "config.json",
        "metrics.csv",
        "last.pt",
        "best.pt",
        "summary.json",
        "samples.png",
        "reconstructions.png",
        "interpolation.png",
        "latent_scatter.png",
    ):
        assert (trained_run / name).is_file(), name
    rows = _rows(trained_run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[-1]["valid_neg_elbo"]) < float(rows[0]["valid_neg_elbo"])  # it learns
    assert float(rows[0]["beta"]) < 1.0 == float(rows[-1]["beta"])  # warm-up over the first epoch
    assert json.loads((trained_run / "config.json").read_text())["dataset"] == "digits"


def test_checkpoint_rebuilds_the_model_without_guessing(trained_run: Path) -> None:
    saved = Checkpoint.load(trained_run / "last.pt")
    model, cfg = saved.build_model(), saved.config.model
    assert model.cfg.latent_dim == cfg.latent_dim == 4 and model.cfg.image_shape == (1, 8, 8)
    assert saved.epoch == 3 and saved.world_size == 1


def test_resume_continues_exactly_where_the_run_stopped(tmp_path: Path) -> None:
    straight = Checkpoint.load(train(tiny_config(tmp_path / "straight", epochs=3)) / "last.pt").model
    cfg = tiny_config(tmp_path / "r", epochs=2)
    train(cfg)
    cfg.epochs = 3
    train(cfg, resume=True)
    assert [int(r["epoch"]) for r in _rows(tmp_path / "r")] == [1, 2, 3]
    resumed = Checkpoint.load(tmp_path / "r" / "last.pt").model
    # same data order, binarization and noise as an uninterrupted run
    assert all(torch.allclose(straight[k], resumed[k], atol=1e-6) for k in straight)
    elbos = [[r["valid_neg_elbo"] for r in _rows(tmp_path / run)] for run in ("r", "straight")]
    assert elbos[0] == elbos[1]


def test_seeds_make_runs_repeatable(tmp_path: Path) -> None:
    a = train(tiny_config(tmp_path / "a", epochs=1))
    b = train(tiny_config(tmp_path / "b", epochs=1))
    assert _rows(a)[0]["valid_neg_elbo"] == _rows(b)[0]["valid_neg_elbo"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"architecture": "conv"},
        {"likelihood": "gaussian", "learn_sigma": True},
        {"beta": 4.0, "free_bits": 0.1},
    ],
)
def test_other_architectures_and_objectives_train(tmp_path: Path, overrides: dict) -> None:
    run = train(tiny_config(tmp_path / "r", epochs=1, **overrides))
    saved = Checkpoint.load(run / "best.pt")
    model, cfg = saved.build_model(), saved.config.model
    assert model.cfg.architecture == cfg.architecture
    assert torch.isfinite(torch.tensor(float(_rows(run)[0]["valid_neg_elbo"])))


def test_torchrun_with_two_cpu_processes(tmp_path: Path) -> None:
    run_dir = tmp_path / "ddp"
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc-per-node",
        "2",
        "-m",
        "training",
        "--dataset",
        "digits",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--hidden",
        "32",
        "--latent-dim",
        "4",
        "--run-dir",
        str(run_dir),
        "--device",
        "cpu",
    ]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert [int(r["epoch"]) for r in _rows(run_dir)] == [1, 2]
    assert Checkpoint.load(run_dir / "last.pt").world_size == 2
