"""Replay the Dockerfile outside Docker: its install stage into a fresh virtual environment, its copies
into a stand-in root folder, its ENV and ENTRYPOINT to start the server. Then measure what the image
would hold and how much memory the service takes (printed, for the README)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from harness import ROOT
from harness.ports import free_port
from harness.processes import answers, running, wait_until
from tests.deploy.dockerfile import Stage, stages

pytestmark = pytest.mark.server  # starts real processes

NOT_REPLAYED = ("groupadd", "useradd")  # creating the service user changes this machine, not a folder
FORBIDDEN = ("torch", "onnx", "pip", "setuptools")  # training, export and installing stay out of the image
DOCKERIGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".tmp-*", ".old-*")  # as .dockerignore


def _inside(root: Path, path: str, workdir: str) -> Path:
    return root / (path if path.startswith("/") else f"{workdir}/{path}").lstrip("/")


def _replay(stage: Stage, root: Path) -> None:
    workdir = "/"
    for instruction, args in stage.steps:
        if instruction == "WORKDIR":
            workdir = args
            _inside(root, workdir, "/").mkdir(parents=True, exist_ok=True)
        elif instruction == "COPY" and not args.startswith("--from"):
            *sources, dest = args.split()
            target = _inside(root, dest, workdir)
            for source in sources:
                if (ROOT / source).is_dir():  # a folder's contents, as Docker copies them
                    shutil.copytree(ROOT / source, target, dirs_exist_ok=True, ignore=DOCKERIGNORED)
                else:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(ROOT / source, target / Path(source).name)
        elif instruction == "RUN" and not args.startswith(NOT_REPLAYED):
            words = [str(_inside(root, w, "/")) if w.startswith("/") else w for w in shlex.split(args)]
            env = os.environ | {"PATH": f"{root}/opt/venv/bin:{os.environ['PATH']}"}
            subprocess.run(words, cwd=_inside(root, workdir, "/"), env=env, check=True, timeout=600)


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("python3") is None:
        pytest.skip("no python3 on PATH to build the virtual environment with")
    root = tmp_path_factory.mktemp("image-root")
    for stage in stages():
        _replay(stage, root)
    return root


def _container_env(root: Path, port: int) -> dict[str, str]:
    final = stages()[-1]
    env = dict(os.environ)
    for key, value in final.env().items():
        value = value.replace("$PATH", os.environ["PATH"])
        env[key] = ":".join(
            str(root / p.lstrip("/")) if p.startswith(("/opt", "/models", "/tmp/")) else p
            for p in value.split(":")
        )
    env |= {"VAE_HOST": "127.0.0.1", "VAE_PORT": str(port)}  # tests listen on loopback only
    env.pop("VIRTUAL_ENV", None)
    return env


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def test_the_image_install_serves_without_torch(image_root: Path, capsys: pytest.CaptureFixture) -> None:
    final = stages()[-1]
    venv = image_root / "opt" / "venv"
    python = str(venv / "bin" / "python")
    assert final.exec_form("ENTRYPOINT") == ["python", "-m", "service"]

    # what the image holds: the serving packages and nothing to build or install with
    probe = f"import importlib.util as u; print([m for m in {FORBIDDEN!r} if u.find_spec(m)])"
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert found.strip() == "[]"

    port = free_port()
    env = _container_env(image_root, port)
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    log = image_root / "service.log"
    with running([python, "-m", "service"], log, None, env=env, cwd=image_root / "app") as process:
        wait_until(answers(f"{url}/readyz"), "image service", process)
        ready_s = time.monotonic() - started
        rss_start = psutil.Process(process.pid).memory_info().rss
        for seed in range(20):
            response = httpx.post(f"{url}/sample", json={"n": 16, "seed": seed}, timeout=10)
            assert response.status_code == 200 and response.json()["model"] == "mnist"
        rss_warm = psutil.Process(process.pid).memory_info().rss
        healthcheck = final.args("HEALTHCHECK")[0].split("CMD", 1)[1].strip()
        assert subprocess.run(json.loads(healthcheck), env=env, timeout=30).returncode == 0
    assert subprocess.run([python, "-m", "service.healthcheck"], env=env, timeout=30).returncode == 1

    sizes = {part: _folder_bytes(image_root / part) / 1e6 for part in ("opt/venv", "app", "models")}
    with capsys.disabled():
        print(
            "\nserving install: "
            + ", ".join(f"/{part} {mb:.1f} MB" for part, mb in sizes.items())
            + f"; ready in {ready_s:.2f} s; RSS {rss_start / 2**20:.0f} MiB after start, "
            f"{rss_warm / 2**20:.0f} MiB after 20 requests (1 worker, {sys.platform})"
        )
