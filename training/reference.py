"""A model's reference scores: log p(x) of its own test images by the estimator the service's /score
uses, kept in its manifest as quantiles, so that /score can say where a new image falls among them.
Torch-free: it runs the exported ONNX files, as the service does."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.manifest import MANIFEST_FILE, Manifest, ScoreReference
from common.priors import prior_of
from common.scoring import DEFAULT_K, Likelihood, importance_sampled

QUANTILES = 201  # the reference's quantiles at 0, 0.5, ..., 100 percent


def score_reference(
    folder: Path,
    manifest: Manifest,
    x: np.ndarray,
    *,
    dataset: str,
    split: str,
    binarized: bool,
    k: int = DEFAULT_K,
    seed: int = 0,
) -> ScoreReference:
    """Score ``x`` (the model's test images, binarized as its protocol says) with the files in ``folder``."""
    sessions = {
        net: ort.InferenceSession(str(folder / entry.path), providers=["CPUExecutionProvider"])
        for net, entry in manifest.files.items()
    }
    scores = importance_sampled(
        lambda images: sessions["encoder"].run(None, {"x": images}),
        lambda z: sessions["decoder"].run(None, {"z": z}),
        x.astype(np.float32),
        k,
        np.random.default_rng(seed),
        _prior(folder, manifest),
        Likelihood(manifest.likelihood, float(manifest.gaussian_sigma or 1.0)),
    )
    return ScoreReference(
        k=k,
        seed=seed,
        n_images=len(x),
        dataset=dataset,
        split=split,
        binarized=binarized,
        quantiles=np.quantile(scores.log_px, np.linspace(0, 1, QUANTILES)).round(4).tolist(),
        mean_log_px=round(float(scores.log_px.mean()), 4),
    )


def _prior(folder: Path, manifest: Manifest):  # type: ignore[no-untyped-def]
    entry = manifest.prior
    data = (folder / entry.file.path).read_bytes() if entry.file is not None else None
    return prior_of(manifest.latent_dim, entry.kind, entry.components, data)


def write_reference(folder: Path, reference: ScoreReference) -> None:
    """The manifest with its reference replaced, written whole or not at all."""
    path = folder / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["score_reference"] = reference.model_dump()
    Manifest.model_validate(manifest)  # what the service will read
    temporary = path.with_name(f".{MANIFEST_FILE}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, path)
