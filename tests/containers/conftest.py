"""Images built here with podman (``make image-test``, ``make compose-test``): left out of ``make test``
by the ``container`` marker, since they need podman and mmdebstrap (``make container-deps``)."""

from __future__ import annotations

import shutil

import pytest

from harness import ROOT
from harness.containers import PYTHON, build_service_image, engine_env, standin

REPORT = ROOT / "runs" / "containers"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/containers/" in str(item.fspath):
            item.add_marker(pytest.mark.container)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    missing = [tool for tool in ("podman", "mmdebstrap") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: `make container-deps` installs them from Debian's packages"
    return engine_env(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def service_image(engine: dict[str, str]) -> str:
    """The serving image, built from this tree on the stand-in base; the build's figures reported."""
    tag = "localhost/vae-service:test"
    base_seconds = standin(PYTHON, engine)
    first = build_service_image(tag, engine)
    cached = build_service_image(tag, engine)  # every layer from the cache now
    report(
        "build",
        f"stand-in base {base_seconds:.0f} s (0: it existed); image build {first:.1f} s, "
        f"again with every layer cached {cached:.1f} s",
    )
    return tag


def report(name: str, line: str) -> None:
    """A measured figure, printed and kept in runs/containers/figures.txt."""
    REPORT.mkdir(parents=True, exist_ok=True)
    with (REPORT / "figures.txt").open("a") as f:
        f.write(f"{name}: {line}\n")
    print(f"\n{name}: {line}")
