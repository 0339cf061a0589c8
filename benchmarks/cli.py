"""What `python -m benchmarks` and `python -m benchmarks.tune` share: their common options, the wrk
check, and the model they load."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.manifest import Manifest

ROOT = Path(__file__).resolve().parents[1]


def parser(prog: str, description: str | None, seconds: int, out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--models", type=Path, default=ROOT / "models", help="model repository")
    p.add_argument("--model", default="mnist/1", help="name/version to load (default: mnist/1)")
    p.add_argument("--seconds", type=int, default=seconds, help="wrk duration of each point")
    p.add_argument("--connections", type=int, nargs="+", default=[1, 32])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / out)
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "bench", help="service logs go here")
    return p


def parse(p: argparse.ArgumentParser, wrk_available: bool) -> argparse.Namespace:
    args = p.parse_args()
    if not wrk_available:
        p.error("wrk is not installed: `make system-deps` installs it from Debian's packages")
    args.logs.mkdir(parents=True, exist_ok=True)
    return args


def model_and_digits(folder: Path, rows: int) -> tuple[Manifest, np.ndarray, np.ndarray]:
    """The model's manifest, ``rows`` latents of a fixed seed, and the decoder's images of them:
    real digits to upload."""
    manifest = Manifest.read(folder)
    z = np.random.default_rng(0).standard_normal((rows, manifest.latent_dim)).astype(np.float32)
    decoder = ort.InferenceSession(str(folder / manifest.files["decoder"].path))
    return manifest, z, decoder.run(None, {"z": z})[0]


def single_model(models: Path, model: str, folder: Path) -> Path:
    """A model repository under ``folder`` holding only ``models/<model>``: requests that name no
    version get this one, as a peer that knows a single model would answer them."""
    repository = folder / "single-model"
    shutil.rmtree(repository, ignore_errors=True)
    shutil.copytree(models / model, repository / model)
    return repository
