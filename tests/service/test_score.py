"""POST /score and models with a mixture prior, in-process on tiny real ONNX models: the numbers
against an independent computation, reproducibility, limits, refusals, and broken prior files."""

from __future__ import annotations

import base64
import io
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from fastapi.testclient import TestClient

from harness.files import encode_image
from harness.tiny_model import tiny_repository, write_model
from service.main import create_app
from tests.service.conftest import settings_for


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """digits/2 and digits/10 with the standard normal prior, and vamp/1 with a mixture of 6."""
    models = tiny_repository(tmp_path_factory.mktemp("models"))
    write_model(models, "vamp", "1", seed=5, components=6)
    return models


@pytest.fixture(scope="module")
def client(repository: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(repository, max_score_rows=4000))) as c:
        yield c


def _png(digit: np.ndarray) -> bytes:
    return encode_image(digit, "PNG")


def _independent_log_px(folder: Path, x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """log p(x) by the importance-weighted formula, written out again with onnxruntime alone."""
    manifest = json.loads((folder / "model.json").read_text())
    enc = ort.InferenceSession(str(folder / "encoder.onnx"))
    dec = ort.InferenceSession(str(folder / "decoder.onnx"))
    mu, logvar = (a.astype(np.float64) for a in enc.run(None, {"x": x}))
    if manifest["prior"]["kind"] == "mixture":
        with np.load(folder / "prior.npz") as f:
            means, logvars = f["means"].astype(np.float64), f["logvars"].astype(np.float64)
    else:
        means, logvars = np.zeros((1, mu.shape[1])), np.zeros((1, mu.shape[1]))
    rng = np.random.default_rng(seed)
    out = []
    for i in range(len(x)):
        eps = rng.standard_normal((k, mu.shape[1]))
        z = mu[i] + np.exp(0.5 * logvar[i]) * eps
        logits = dec.run(None, {"z": z.astype(np.float32)})[1].reshape(k, -1).astype(np.float64)
        target = x[i].reshape(1, -1)
        log_px_z = (target * -np.logaddexp(0, -logits) + (1 - target) * -np.logaddexp(0, logits)).sum(axis=1)
        comps = -0.5 * (
            np.log(2 * np.pi) + logvars[None] + (z[:, None] - means[None]) ** 2 / np.exp(logvars[None])
        )
        log_pz = np.log(np.exp(comps.sum(axis=2)).mean(axis=1))
        log_qz = (-0.5 * (np.log(2 * np.pi) + logvar[i] + eps**2)).sum(axis=1)
        w = log_px_z + log_pz - log_qz
        out.append(np.log(np.exp(w - w.max()).mean()) + w.max())
    return np.array(out)


@pytest.mark.parametrize("model", ["digits", "vamp"])
def test_scores_are_the_importance_weighted_estimate(
    client: TestClient, repository: Path, digit_images: np.ndarray, model: str
) -> None:
    from PIL import Image

    small = [
        np.asarray(Image.fromarray(d).resize((8, 8), Image.Resampling.BILINEAR)) for d in digit_images[:4]
    ]
    files = [("files", (f"{i}.png", _png(d), "image/png")) for i, d in enumerate(small)]
    answer = client.post("/score", files=files, data={"k": "50", "seed": "3", "model": model})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["k"], body["seed"], body["model"]) == (50, 3, model)
    x = np.stack([d[None] / np.float32(255) for d in small]).astype(np.float32)
    folder = repository / model / ("1" if model == "vamp" else "10")
    assert np.allclose(body["log_px"], _independent_log_px(folder, x, 50, 3), atol=1e-3)
    assert all(
        e <= p + 1e-9 for e, p in zip(body["elbo"], body["log_px"], strict=True)
    )  # Jensen, same samples
    assert np.allclose(body["bits_per_dim"], -np.array(body["log_px"]) / (64 * math.log(2)))
    assert body["percentile"] is None  # the tiny models carry no reference scores
    again = client.post("/score", files=files, data={"k": "50", "seed": "3", "model": model}).json()
    assert again["log_px"] == body["log_px"]  # same seed, same numbers


def test_json_and_multipart_agree_and_limits_name_both_factors(
    client: TestClient, digit_images: np.ndarray
) -> None:
    data = _png(digit_images[0][::3, ::3])
    as_json = client.post("/score", json={"images": [base64.b64encode(data).decode()], "k": 20, "seed": 1})
    form = client.post(
        "/score", files=[("files", ("a.png", data, "image/png"))], data={"k": "20", "seed": "1"}
    )
    assert as_json.json()["log_px"] == form.json()["log_px"]
    over = client.post("/score", json={"images": [base64.b64encode(data).decode()] * 8, "k": 600})
    assert over.status_code == 422 and over.json()["field"] == "k"
    assert "600 samples x 8 images = 4800 decoder rows, more than the limit of 4000" in over.json()["detail"]
    huge = client.post("/score", json={"images": [base64.b64encode(data).decode()], "k": 10**9})
    assert huge.status_code == 422 and "VAE_MAX_SCORE_K" in huge.json()["detail"]


def test_sampling_a_mixture_prior_and_serving_it_beside_a_standard_one(
    client: TestClient, repository: Path
) -> None:
    with np.load(repository / "vamp" / "1" / "prior.npz") as f:
        means = f["means"]
    cold = np.array(
        client.post("/sample", json={"n": 30, "seed": 9, "temperature": 0.01, "model": "vamp"}).json()["z"]
    )
    nearest = np.abs(cold[:, None] - means[None]).max(axis=2).min(axis=1)
    assert (nearest < 0.05).all()  # at a low temperature, the components' centres
    standard = np.array(client.post("/sample", json={"n": 30, "seed": 9, "temperature": 0.01}).json()["z"])
    assert np.abs(standard).max() < 0.05  # the standard normal's centre
    models = {
        (m["model"], m["version"]): m["manifest"]["prior"]["kind"]
        for m in client.get("/models").json()["models"]
    }
    assert models == {
        ("digits", "2"): "standard_normal",
        ("digits", "10"): "standard_normal",
        ("vamp", "1"): "mixture",
    }


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda f: (f / "prior.npz").unlink(), "prior.npz is missing"),
        (lambda f: (f / "prior.npz").write_bytes(b"not an npz"), "prior.npz has sha256"),
    ],
)
def test_a_model_with_a_broken_prior_is_refused_with_the_reason(
    repository: Path, tmp_path: Path, damage, reason: str
) -> None:
    models = tmp_path / "models"
    shutil.copytree(repository, models)
    damage(models / "vamp" / "1")
    with TestClient(create_app(settings_for(models))) as c:
        assert c.get("/readyz").json()["refused"] == ["vamp/1"]
        (failure,) = c.get("/models").json()["failed"]
        assert reason in failure["reason"]
        assert c.post("/sample", json={"n": 1}).status_code == 200  # the others serve


def test_a_prior_of_the_wrong_shape_or_with_pickles_is_refused(repository: Path, tmp_path: Path) -> None:
    from common.manifest import sha256_file

    def wrong_shape(buf: io.BytesIO) -> None:
        np.savez(buf, means=np.zeros((6, 3), np.float32), logvars=np.zeros((6, 3), np.float32))

    def pickled(buf: io.BytesIO) -> None:
        np.savez(buf, means=np.array([None], dtype=object), logvars=np.zeros(1))

    for content, reason in ((wrong_shape, "[6, 3]"), (pickled, "pickle")):
        models = tmp_path / reason.strip("[]").replace(", ", "-")
        shutil.copytree(repository, models)
        folder = models / "vamp" / "1"
        buf = io.BytesIO()
        content(buf)
        (folder / "prior.npz").write_bytes(buf.getvalue())
        manifest = json.loads((folder / "model.json").read_text())
        manifest["prior"]["file"]["sha256"] = sha256_file(folder / "prior.npz")
        (folder / "model.json").write_text(json.dumps(manifest))
        with TestClient(create_app(settings_for(models))) as c:
            (failure,) = c.get("/models").json()["failed"]
            assert failure["path"] == "vamp/1" and reason in failure["reason"], failure
