"""The model that ships in models/mnist/1: intact, as the contract describes it, and good."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from common.manifest import Manifest, sha256_file
from harness import ROOT

FOLDER = ROOT / "models" / "mnist" / "1"


@pytest.fixture(scope="module")
def manifest() -> Manifest:
    return Manifest.read(FOLDER)


@pytest.fixture(scope="module")
def sessions() -> tuple[ort.InferenceSession, ort.InferenceSession]:
    return (
        ort.InferenceSession(str(FOLDER / "encoder.onnx"), providers=["CPUExecutionProvider"]),
        ort.InferenceSession(str(FOLDER / "decoder.onnx"), providers=["CPUExecutionProvider"]),
    )


def test_files_match_their_hashes(manifest: Manifest) -> None:
    for net in ("encoder", "decoder"):
        assert sha256_file(FOLDER / manifest.files[net].path) == manifest.files[net].sha256


def test_manifest_reports_the_contract_protocol(manifest: Manifest) -> None:
    assert (manifest.name, manifest.version, manifest.image_shape) == ("mnist", "1", (1, 28, 28))
    assert manifest.likelihood == "bernoulli"
    m = manifest.metrics
    assert m["dataset"] == "mnist" and m["split"] == "test" and m["n_images"] == 10_000
    assert m["nll_importance_samples"] >= 1000
    assert m["test_nll_nats"] <= 88.0  # the target, measured by `make train`
    assert -m["test_elbo_nats"] >= m["test_nll_nats"]  # the ELBO is the looser bound
    assert 0 < m["active_units"] <= manifest.latent_dim
    cfg = manifest.training["config"]
    assert cfg["dataset"] == "mnist" and cfg["binarize"] and manifest.training["wall_seconds"] > 0


def test_contract_names_and_dynamic_batch(manifest: Manifest, sessions: tuple) -> None:
    encoder, decoder = sessions
    d = manifest.latent_dim
    assert [(i.name, i.shape[1:]) for i in encoder.get_inputs()] == [("x", [1, 28, 28])]
    assert [(o.name, o.shape[1:]) for o in encoder.get_outputs()] == [("mu", [d]), ("logvar", [d])]
    assert [(o.name, o.shape[1:]) for o in decoder.get_outputs()] == [
        ("x_mean", [1, 28, 28]),
        ("logits", [1, 28, 28]),
    ]
    z = np.random.default_rng(0).standard_normal((5, d), dtype=np.float32)
    x_mean, logits = decoder.run(None, {"z": z})
    sigmoid = np.exp(-np.logaddexp(0.0, -logits.astype(np.float64)))  # without overflow
    assert x_mean.shape == (5, 1, 28, 28) and np.allclose(x_mean, sigmoid, atol=1e-6)


def _mnist_test_digits(n: int) -> np.ndarray:
    """The first real MNIST test digits, fetched and hash-checked as training does (cached in data/)."""
    from training.data import load_mnist

    return load_mnist(ROOT / "data").test.images[:n]


def test_encode_decode_through_the_service_reconstructs_real_test_digits() -> None:
    """Real MNIST test digits as PNG uploads, encoded and decoded by the service.

    An input-blind model can do no better than the mean image. The shipped model's reconstruction
    error is 0.09 of that (MSE 0.0057 against 0.062, measured on these 64 and the first 200 test
    digits); the bound of 0.25 leaves room for other onnxruntime builds while still failing any model
    whose latents lose the digits' shape. Each input must also be nearest its own reconstruction."""
    from fastapi.testclient import TestClient

    from harness.files import encode_image
    from service.main import create_app
    from service.settings import Settings

    pixels = _mnist_test_digits(64)
    x = pixels.astype(np.float32) / 255
    files = [
        ("files", (f"{i}.png", encode_image(img[0], "PNG"), "image/png")) for i, img in enumerate(pixels)
    ]
    with TestClient(create_app(Settings(models_dir=ROOT / "models"))) as client:
        mu = client.post("/encode", files=files).json()["mu"]
        recon = np.array(client.post("/decode", json={"z": mu, "format": "array"}).json()["arrays"])
    own = ((recon - x) ** 2).mean(axis=(1, 2, 3))
    mean_image = ((x.mean(axis=0, keepdims=True) - x) ** 2).mean(axis=(1, 2, 3))
    assert own.mean() < 0.25 * mean_image.mean()
    cross = ((recon[None] - x[:, None]) ** 2).mean(axis=(2, 3, 4))  # [input, reconstruction]
    assert (cross.argmin(axis=1) == np.arange(len(x))).mean() > 0.95


SECOND = ROOT / "models" / "mnist" / "2"


def test_the_second_version_carries_its_prior_and_beats_the_first() -> None:
    from common.priors import Mixture, read_mixture

    manifest = Manifest.read(SECOND)
    assert sha256_file(SECOND / "prior.npz") == manifest.prior.file.sha256  # type: ignore[union-attr]
    prior = read_mixture((SECOND / "prior.npz").read_bytes(), manifest.prior.components or 0, 32)
    assert isinstance(prior, Mixture) and prior.means.shape == (500, 32)
    m, first = manifest.metrics, Manifest.read(FOLDER).metrics
    assert m["nll_importance_samples"] >= 5000 and m["test_nll_nats"] <= 84.0  # the goal
    assert m["test_nll_nats"] < first["test_nll_nats"]
    assert manifest.training["config"]["model"]["prior"] == "vamp"
    assert manifest.training["config"]["iw_samples"] > 1


@pytest.mark.parametrize("folder", [FOLDER, SECOND])
def test_uploads_are_normalized_and_scores_have_their_reference(folder: Path) -> None:
    manifest = Manifest.read(folder)
    assert manifest.preprocessing_config["normalize"] == "mnist"
    reference = manifest.score_reference
    assert reference is not None and reference.n_images == 10_000 and reference.binarized
    assert reference.quantiles[0] < reference.mean_log_px < reference.quantiles[-1]


def test_score_over_http_agrees_with_the_estimator_on_binarized_test_digits() -> None:
    """The protocol's binarized test digits uploaded as 0/255 PNGs: /score's log p(x) at K = 1000 is the
    estimator's run on the ONNX files directly with the same samples: the HTTP path, the PNGs, the
    preprocessing and the batched chunks change nothing."""
    from fastapi.testclient import TestClient

    from common.priors import StandardNormal
    from common.scoring import Likelihood, importance_sampled
    from harness.files import encode_image
    from service.main import create_app
    from service.settings import Settings
    from training.data import binarize_fixed

    pixels = _mnist_test_digits(10_000)
    binary = binarize_fixed(pixels, seed=0)[:100]  # the contract's binarization, of the whole set
    files = [
        ("files", (f"{i}.png", encode_image((b[0] * 255).astype(np.uint8), "PNG"), "image/png"))
        for i, b in enumerate(binary)
    ]
    with TestClient(create_app(Settings(models_dir=ROOT / "models", max_images=100))) as client:
        answer = client.post("/score", files=files, data={"k": "1000", "seed": "5", "version": "1"})
    assert answer.status_code == 200, answer.text
    encoder, decoder = (ort.InferenceSession(str(FOLDER / f"{n}.onnx")) for n in ("encoder", "decoder"))
    direct = importance_sampled(
        lambda x: encoder.run(None, {"x": x}),
        lambda z: decoder.run(None, {"z": z}),
        binary,
        1000,
        np.random.default_rng(5),  # the request's seed
        StandardNormal(32),
        Likelihood("bernoulli"),
    )
    assert np.allclose(answer.json()["log_px"], direct.log_px, atol=1e-3)


MAP = ROOT / "models" / "mnist2d" / "1"


@pytest.mark.parametrize("folder", [FOLDER, SECOND, MAP])
def test_latent_summaries_agree_with_the_evaluation_s_active_units(folder: Path) -> None:
    """The activity the web page marks units by is the one evaluate counted (Burda's, over the same
    10,000 test digits), computed again from the ONNX encoder."""
    manifest = Manifest.read(folder)
    latents = manifest.latents
    assert latents is not None and latents.n_images == 10_000 and len(latents.activity) == manifest.latent_dim
    assert sum(a > 0.01 for a in latents.activity) == manifest.metrics["active_units"]


def test_the_two_dimensional_model_draws_a_map_of_labelled_test_digits() -> None:
    manifest = Manifest.read(MAP)
    assert manifest.latent_dim == 2 and manifest.metrics["n_images"] == 10_000
    assert manifest.metrics["test_nll_nats"] < 150  # a 2-D latent costs nats; the map is the point
    latents = manifest.latents
    assert latents is not None and latents.points is not None and latents.labels is not None
    assert len(latents.points) == len(latents.labels) == 2000
    assert set(latents.labels) == set(range(10))
    from training.data import load_mnist  # fetches data/ when needed, hash-checked

    assert latents.labels == load_mnist(ROOT / "data").test.labels[:2000].tolist()
    points = np.array(latents.points)
    # the digits' classes sit in distinct regions: each label's mean is nearer its own points
    centres = np.stack([points[np.array(latents.labels) == k].mean(axis=0) for k in range(10)])
    nearest = np.argmin(((points[:, None] - centres[None]) ** 2).sum(axis=2), axis=1)
    assert (nearest == np.array(latents.labels)).mean() > 0.5
