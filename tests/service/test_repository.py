"""Loading the model repository: verified files are served, anything else is refused with a reason."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest

from common.manifest import sha256_file
from service.core.errors import NotFound
from service.core.registry import Catalog
from tests.service.conftest import settings_for


@pytest.fixture
def repo_copy(model_repository: Path, tmp_path: Path) -> Path:
    target = tmp_path / "models"
    shutil.copytree(model_repository, target)
    return target


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "model.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | changes))


def test_every_version_is_served_and_the_highest_is_the_default(model_repository: Path) -> None:
    repo = Catalog.scan(settings_for(model_repository))
    assert repo.failures == [] and repo.versions("digits") == ["2", "10"]  # numeric, not string order
    assert repo.get().version == "10" and repo.get("digits", "2").version == "2"


def test_unknown_names_and_versions_say_what_exists(model_repository: Path) -> None:
    repo = Catalog.scan(settings_for(model_repository))
    with pytest.raises(NotFound, match="no model named 'cats'; available: digits"):
        repo.get("cats")
    with pytest.raises(NotFound, match="has no version '3'; available: 2, 10"):
        repo.get("digits", "3")


def test_a_file_whose_hash_differs_is_refused_and_the_rest_still_serve(
    repo_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    decoder = repo_copy / "digits" / "2" / "decoder.onnx"
    data = bytearray(decoder.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte
    decoder.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR):
        repo = Catalog.scan(settings_for(repo_copy))
    assert list(repo.models) == [("digits", "10")]
    assert repo.failures[0].path == "digits/2" and "decoder.onnx has sha256" in repo.failures[0].reason
    assert "model digits/2 refused: decoder.onnx has sha256" in caplog.text


def test_a_file_outside_the_repository_is_refused_even_with_the_right_hash(
    repo_copy: Path, tmp_path: Path
) -> None:
    folder = repo_copy / "digits" / "2"
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(folder / "encoder.onnx", outside)
    (folder / "encoder.onnx").symlink_to(outside)
    assert (
        sha256_file(folder / "encoder.onnx")
        == json.loads((folder / "model.json").read_text())["files"]["encoder"]["sha256"]
    )
    repo = Catalog.scan(settings_for(repo_copy))
    assert "encoder.onnx is a link that leaves the model repository" in repo.failures[0].reason


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"name": "other"}, "manifest names other/2, folder is digits/2"),
        ({"latent_dim": 7}, "mu has shape"),
        ({"image_shape": [1, 28, 28]}, "x has shape"),
        ({"likelihood": "poisson"}, "model.json is invalid"),
        ({"files": {"encoder": {"path": "../10/encoder.onnx", "sha256": "0" * 64}}}, "model.json is invalid"),
    ],
)
def test_a_manifest_that_does_not_match_its_files_is_refused(
    repo_copy: Path, changes: dict, reason: str
) -> None:
    _edit_manifest(repo_copy / "digits" / "2", **changes)
    repo = Catalog.scan(settings_for(repo_copy))
    assert [f.path for f in repo.failures] == ["digits/2"] and reason in repo.failures[0].reason
    assert list(repo.models) == [("digits", "10")]


def test_temporary_export_folders_and_missing_repositories(repo_copy: Path, tmp_path: Path) -> None:
    shutil.copytree(repo_copy / "digits" / "2", repo_copy / "digits" / ".tmp-3-abc")
    repo = Catalog.scan(settings_for(repo_copy))
    assert repo.failures == [] and repo.versions("digits") == ["2", "10"]
    empty = Catalog.scan(settings_for(tmp_path / "nowhere"))
    assert empty.models == {} and "does not exist" in empty.failures[0].reason


def test_the_api_reports_a_refused_model_and_serves_the_rest(repo_copy: Path) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app

    (repo_copy / "digits" / "10" / "encoder.onnx").write_bytes(b"not the exported graph")
    with TestClient(create_app(settings_for(repo_copy))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["models"] == ["digits/2"]
        assert ready.json()["refused"] == ["digits/10"] and "sha256" not in ready.text  # no reasons on probes
        (failure,) = client.get("/models").json()["failed"]
        assert failure["path"] == "digits/10" and "encoder.onnx has sha256" in failure["reason"]
        assert client.post("/sample", json={"n": 1}).json()["version"] == "2"  # the highest that loaded
        missing = client.post("/sample", json={"n": 1, "version": "10"})
        assert missing.status_code == 404 and "available: 2" in missing.json()["detail"]
        assert client.get("/healthz").status_code == 200


def _break(folder: Path) -> None:
    """A new manifest (so the folder counts as changed) whose decoder's hash no longer holds."""
    _edit_manifest(folder, metrics={"test_nll_nats": 1.0})
    decoder = folder / "decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:-1])


def test_a_rescan_reuses_what_is_unchanged_and_keeps_what_broke(repo_copy: Path) -> None:
    settings = settings_for(repo_copy)
    first = Catalog.scan(settings)
    _break(repo_copy / "digits" / "10")
    shutil.copytree(repo_copy / "digits" / "2", repo_copy / "digits" / "11")
    _edit_manifest(repo_copy / "digits" / "11", version="11")
    second = Catalog.scan(settings, previous=first)
    assert second.models[("digits", "2")] is first.models[("digits", "2")]  # unchanged: not reloaded
    assert second.models[("digits", "10")] is first.models[("digits", "10")]  # broken: the old one serves
    assert second.get().version == "11"  # a good new version is the new default
    (failure,) = second.failures
    assert failure.path == "digits/10" and "goes on serving" in failure.reason and not failure.blocking
    assert first.retired_by(second) == []


def test_a_folder_that_failed_at_start_up_blocks_readiness_until_it_loads(repo_copy: Path) -> None:
    settings = settings_for(repo_copy)
    _break(repo_copy / "digits" / "10")
    first = Catalog.scan(settings)
    assert [f.blocking for f in first.failures] == [True]
    second = Catalog.scan(settings, previous=first)
    assert [f.blocking for f in second.failures] == [True]  # still broken: still not ready
    shutil.rmtree(repo_copy / "digits" / "10")
    third = Catalog.scan(settings, previous=second)
    assert third.failures == [] and list(third.models) == [("digits", "2")]
    shutil.rmtree(repo_copy / "digits" / "2")
    fourth = Catalog.scan(settings, previous=third)
    assert third.retired_by(fourth) == [third.models[("digits", "2")]] and fourth.models == {}


def test_a_manifest_linked_outside_the_repository_is_refused_and_never_shown(
    repo_copy: Path, tmp_path: Path
) -> None:
    from fastapi.testclient import TestClient

    from service.main import create_app

    secret = tmp_path / "secret.json"
    secret.write_text('{"root": "x:0:0:root:/root:/bin/bash"}')
    manifest = repo_copy / "digits" / "10" / "model.json"
    manifest.unlink()
    manifest.symlink_to(secret)
    catalog = Catalog.scan(settings_for(repo_copy))
    assert [(f.path, f.reason) for f in catalog.failures] == [
        ("digits/10", "model.json is a link that leaves the model repository")
    ]
    with TestClient(create_app(settings_for(repo_copy))) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json() == {
            "status": "not ready",
            "models": ["digits/2"],
            "refused": ["digits/10"],
        }
        models = client.get("/models").text
        assert "root" not in models and str(tmp_path) not in models
