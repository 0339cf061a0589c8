"""What a model's manifest says about its own test images, computed from its exported ONNX files
(torch-free, as the service runs them):

- the reference scores: log p(x) by the estimator the service's /score uses, kept as quantiles, so
  that /score can say where a new image falls among them;
- the latent summary: each unit's activity and, for a model of two dimensions, where the first test
  digits land (the web page marks inactive units and draws the latent map from it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from common.manifest import MANIFEST_FILE, LatentSummary, Manifest, ScoreReference
from common.priors import prior_of
from common.scoring import DEFAULT_K, Likelihood, importance_sampled

QUANTILES = 201  # the reference's quantiles at 0, 0.5, ..., 100 percent
MAP_POINTS = 2000  # test digits on a 2-D model's latent map: enough to see each label's region, 40 KB


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


def latent_summary(
    folder: Path, manifest: Manifest, x: np.ndarray, labels: np.ndarray | None, *, dataset: str, split: str
) -> LatentSummary:
    """Each unit's activity over ``x`` (the test images, as the protocol scores them) and, for a 2-D
    model with labels, the means of the first MAP_POINTS images."""
    encoder = ort.InferenceSession(
        str(folder / manifest.files["encoder"].path), providers=["CPUExecutionProvider"]
    )
    mu = np.concatenate(
        [encoder.run(["mu"], {"x": x[i : i + 1000].astype(np.float32)})[0] for i in range(0, len(x), 1000)]
    ).astype(np.float64)
    mapped = manifest.latent_dim == 2 and labels is not None
    return LatentSummary(
        n_images=len(x),
        dataset=dataset,
        split=split,
        activity=mu.var(axis=0, ddof=1).round(4).tolist(),
        points=mu[:MAP_POINTS].round(3).tolist() if mapped else None,
        labels=[int(v) for v in labels[:MAP_POINTS]] if mapped and labels is not None else None,
    )


def _prior(folder: Path, manifest: Manifest):  # type: ignore[no-untyped-def]
    entry = manifest.prior
    data = (folder / entry.file.path).read_bytes() if entry.file is not None else None
    return prior_of(manifest.latent_dim, entry.kind, entry.components, data)


def write_reference(folder: Path, reference: ScoreReference, latents: LatentSummary) -> None:
    """The manifest with its reference and latent summary replaced, written whole or not at all."""
    path = folder / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    manifest["score_reference"] = reference.model_dump()
    manifest["latents"] = latents.model_dump(exclude_none=True)
    Manifest.model_validate(manifest)  # what the service will read
    temporary = path.with_name(f".{MANIFEST_FILE}.tmp")
    temporary.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, path)
