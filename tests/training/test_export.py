"""Export to the model repository: contract names, parity with torch, hashes, atomicity."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from common.manifest import Manifest, sha256_file
from common.preprocessing import Preprocessing
from training import export as export_module
from training.checkpoint import Checkpoint
from training.export import ExportError, export_model
from training.model import VAE, VAEConfig

DIGITS = Preprocessing(height=8, width=8)


def _export(model: VAE, models: Path, version: str = "1", **kwargs: object) -> Path:
    prep = Preprocessing(*model.cfg.image_shape)
    return export_model(
        model,
        models,
        "digits",
        version,
        preprocessing=prep,
        metrics={"test_nll_nats": 1.0},
        training={"epochs": 1},
        **kwargs,
    )


def _session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_export_matches_torch_at_any_batch_size(trained_run: Path, tmp_path: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    folder = _export(model, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["decoder.onnx", "encoder.onnx", "model.json"]
    enc, dec = _session(folder / "encoder.onnx"), _session(folder / "decoder.onnx")
    assert [i.name for i in enc.get_inputs()] == ["x"] and [o.name for o in enc.get_outputs()] == [
        "mu",
        "logvar",
    ]
    assert [i.name for i in dec.get_inputs()] == ["z"] and [o.name for o in dec.get_outputs()] == [
        "x_mean",
        "logits",
    ]
    g = torch.Generator().manual_seed(5)
    for n in (1, 3, 130):
        x = torch.rand(n, 1, 8, 8, generator=g)
        mu, logvar = enc.run(None, {"x": x.numpy()})
        with torch.no_grad():
            want_mu, want_logvar = model.encode(x)
            z = torch.randn(n, 4, generator=g)
            want_logits = model.decode(z)
        assert mu.shape == (n, 4) and np.abs(mu - want_mu.numpy()).max() <= 1e-4
        assert np.abs(logvar - want_logvar.numpy()).max() <= 1e-4
        x_mean, logits = dec.run(None, {"z": z.numpy()})
        assert x_mean.shape == (n, 1, 8, 8) and np.abs(logits - want_logits.numpy()).max() <= 1e-4
        assert np.allclose(x_mean, 1 / (1 + np.exp(-logits)), atol=1e-6)
    # no randomness: the same input gives the same output twice
    z = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
    assert np.array_equal(dec.run(None, {"z": z})[0], dec.run(None, {"z": z})[0])


def test_manifest_carries_hashes_metrics_and_parity(trained_run: Path, tmp_path: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    folder = _export(model, tmp_path)
    manifest = Manifest.read(folder)
    assert (manifest.name, manifest.version, manifest.latent_dim) == ("digits", "1", 4)
    assert manifest.image_shape == (1, 8, 8) and manifest.likelihood == "bernoulli"
    for net in ("encoder", "decoder"):
        assert manifest.files[net].sha256 == sha256_file(folder / manifest.files[net].path)
        graph = onnx.load(folder / f"{net}.onnx")
        onnx.checker.check_model(graph, full_check=True)
        assert not any(n.metadata_props for n in graph.graph.node)  # no stack traces with local paths
        assert b"stack_trace" not in (folder / f"{net}.onnx").read_bytes()
    assert max(manifest.onnx["parity_max_abs_diff"].values()) <= 1e-4
    assert manifest.preprocessing_config == DIGITS.to_dict() and "resize" in manifest.preprocessing


@pytest.mark.parametrize(
    "config",
    [
        VAEConfig(
            image_shape=(1, 8, 8), latent_dim=3, hidden=(16,), likelihood="gaussian", gaussian_sigma=0.2
        ),
        VAEConfig(
            image_shape=(3, 8, 8), latent_dim=5, architecture="conv", conv_channels=(4, 8), conv_hidden=16
        ),
    ],
)
def test_other_models_export_with_parity(tmp_path: Path, config: VAEConfig) -> None:
    torch.manual_seed(0)
    folder = _export(VAE(config).eval(), tmp_path)
    manifest = Manifest.read(folder)
    outputs = [o.name for o in _session(folder / "decoder.onnx").get_outputs()]
    if config.likelihood == "gaussian":
        assert outputs == ["x_mean"] and manifest.gaussian_sigma == pytest.approx(0.2)
    else:
        assert outputs == ["x_mean", "logits"] and manifest.image_shape == (3, 8, 8)


@pytest.mark.parametrize("latent_dim", [2, 5])
def test_export_with_test_images_writes_the_score_reference_and_the_latent_summary(
    tmp_path: Path, latent_dim: int
) -> None:
    torch.manual_seed(0)
    model = VAE(VAEConfig(image_shape=(1, 8, 8), latent_dim=latent_dim, hidden=(16,))).eval()
    rng = np.random.default_rng(0)
    x = (rng.random((40, 1, 8, 8)) < 0.3).astype(np.float32)
    labels = np.arange(40) % 10
    reference = export_module.ReferenceImages(x, "digits", "test", True, labels)
    manifest = Manifest.read(_export(model, tmp_path, reference=reference))
    assert manifest.score_reference is not None and manifest.score_reference.n_images == 40
    latents = manifest.latents
    assert latents is not None and latents.n_images == 40 and len(latents.activity) == latent_dim
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(x))
    assert np.allclose(latents.activity, mu.double().var(dim=0).numpy(), atol=1e-4)  # Burda's activity
    if latent_dim == 2:  # the points of a latent map, with their labels
        assert latents.labels == labels.tolist()
        assert np.allclose(latents.points, mu.numpy(), atol=1e-3)
    else:
        assert latents.points is None and latents.labels is None


def test_an_existing_version_is_not_overwritten_without_force(trained_run: Path, tmp_path: Path) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    folder = _export(model, tmp_path)
    before = sha256_file(folder / "decoder.onnx")
    with pytest.raises(ExportError, match="already exists"):
        _export(model, tmp_path)
    assert sha256_file(folder / "decoder.onnx") == before
    _export(model, tmp_path, force=True)
    assert Manifest.read(folder).files["decoder"].sha256 == sha256_file(folder / "decoder.onnx")
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1"]  # no temporary folders left


def test_a_failed_export_leaves_nothing_and_keeps_the_old_version(
    trained_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    folder = _export(model, tmp_path)
    before = {p.name: sha256_file(p) for p in folder.iterdir()}
    monkeypatch.setattr(export_module, "_parity", lambda *args: 0.5)
    with pytest.raises(ExportError, match="differs from torch"):
        _export(model, tmp_path, version="2")
    with pytest.raises(ExportError, match="differs from torch"):
        _export(model, tmp_path, force=True)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["1"]
    assert {p.name: sha256_file(p) for p in folder.iterdir()} == before


@pytest.mark.parametrize(
    ("name", "version"), [("../evil", "1"), ("ok", "../2"), ("ok", ".hidden"), ("a/b", "1")]
)
def test_unsafe_names_are_refused_before_anything_is_written(
    trained_run: Path, tmp_path: Path, name: str, version: str
) -> None:
    model = Checkpoint.load(trained_run / "best.pt").build_model()
    models = tmp_path / "models"
    models.mkdir()
    with pytest.raises(ValueError, match="must match"):
        export_model(model, models, name, version, preprocessing=DIGITS, metrics={}, training={})
    assert list(tmp_path.rglob("*")) == [models]
