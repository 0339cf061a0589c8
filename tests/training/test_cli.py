"""The command line as a user runs it: a round trip, and clear errors that write nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from common.manifest import Manifest, sha256_file
from common.preprocessing import Preprocessing, preprocess_bytes
from harness import ROOT
from harness.files import encode_image
from training.__main__ import main

TINY = ["--epochs", "2", "--batch-size", "32", "--hidden", "32", "--latent-dim", "4"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "training", *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )


def _snapshot(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_train_evaluate_export_and_serve_with_onnxruntime(tmp_path: Path, digit_images: np.ndarray) -> None:
    """A folder of the user's own PNG and JPEG images, end to end through the CLI."""
    images = tmp_path / "images"
    for i in range(40):
        img = digit_images[i % len(digit_images)]
        folder = images / str(i % 3)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i}.{'png' if i % 2 else 'jpeg'}").write_bytes(
            encode_image(img, "PNG" if i % 2 else "JPEG")
        )
    run, models = tmp_path / "run", tmp_path / "models"
    main(["--dataset", "folder", "--data-dir", str(images), "--run-dir", str(run), *TINY])
    main(["evaluate", str(run), "--k", "100"])
    report = json.loads((run / "eval.json").read_text())
    assert report["split"] == "test" and report["nll_importance_samples"] == 100 and report["n_images"] == 4
    main(["export", str(run), "--name", "mine", "--version", "3", "--models-dir", str(models)])
    folder = models / "mine" / "3"
    manifest = Manifest.read(folder)
    assert manifest.metrics["test_nll_nats"] == report["test_nll_nats"]
    assert manifest.training["config"]["dataset"] == "folder" and manifest.training["epochs_trained"] == 2
    assert "torch" in manifest.training["versions"]
    assert manifest.files["encoder"].sha256 == sha256_file(folder / "encoder.onnx")
    # what the service will do: preprocess an upload with the manifest's settings, encode, decode
    spec = Preprocessing.from_dict(manifest.preprocessing_config)
    x = preprocess_bytes(encode_image(digit_images[0], "PNG"), spec)[None]
    enc = ort.InferenceSession(str(folder / "encoder.onnx"), providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    mu, logvar = enc.run(None, {"x": x})
    x_mean, _ = dec.run(None, {"z": mu})
    assert mu.shape == (1, 4) and x_mean.shape == (1, 1, 28, 28) and np.isfinite(logvar).all()


def test_help_lists_every_knob_with_its_default() -> None:
    result = _cli("train", "--help")
    assert result.returncode == 0
    assert (
        "--free-bits" in result.stdout
        and "(default: 0.0)" in result.stdout
        and "--warmup-epochs" in result.stdout
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--dataset", "folder", "--data-dir", "does-not-exist"],
            "image folder does-not-exist does not exist",
        ),
        (["--dataset", "idx", "--data-dir", "does-not-exist"], "IDX folder does-not-exist does not exist"),
        (["--dataset", "folder"], "needs --data-dir"),
        (["--dataset", "cifar"], "invalid choice: 'cifar'"),
        (["--no-such-option", "1"], "unrecognized arguments: --no-such-option"),
        (["--epochs", "0", "--dataset", "digits"], "epochs must be >= 1"),
        (
            ["--architecture", "conv", "--conv-channels", "8", "8", "8", "8", "--dataset", "digits"],
            "divisible by 16",
        ),
    ],
)
def test_bad_training_input_is_a_clear_error_that_writes_nothing(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:  # in-process; the corrupt-image case below runs the program
        main([*args, "--run-dir", str(tmp_path / "run")])
    assert stopped.value.code != 0
    assert message in f"{stopped.value.code} {capsys.readouterr().err}"
    assert _snapshot(tmp_path) == []


def test_corrupt_image_is_named_and_nothing_is_written(tmp_path: Path, digit_images: np.ndarray) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for i in range(5):
        (images / f"{i}.png").write_bytes(encode_image(digit_images[i], "PNG"))
    (images / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    result = _cli("--dataset", "folder", "--data-dir", str(images), "--run-dir", str(tmp_path / "run"))
    assert result.returncode != 0 and "bad.jpg" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()


def test_export_without_evaluation_or_checkpoint_is_refused(trained_run: Path, tmp_path: Path) -> None:
    result = _cli("export", str(trained_run), "--name", "x", "--version", "1", "--models-dir", str(tmp_path))
    assert result.returncode != 0 and "run `python -m training evaluate" in result.stderr
    result = _cli("evaluate", str(tmp_path / "no-run"))
    assert result.returncode != 0 and "no checkpoint at" in result.stderr
    assert _snapshot(tmp_path) == []


def test_resume_refuses_to_change_the_saved_config(trained_run: Path) -> None:
    result = _cli("--resume", "--run-dir", str(trained_run), "--latent-dim", "9")
    assert result.returncode != 0 and "cannot change ['latent_dim']" in result.stderr


def test_export_records_the_preprocessing_of_the_models_own_image_shape(
    trained_run: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    main(["evaluate", str(run), "--k", "10", "--limit", "50"])
    main(["export", str(run), "--name", "digits", "--version", "1", "--models-dir", str(tmp_path / "models")])
    manifest = Manifest.read(tmp_path / "models" / "digits" / "1")
    assert manifest.image_shape == (1, 8, 8)
    assert (manifest.preprocessing_config["height"], manifest.preprocessing_config["width"]) == (8, 8)
