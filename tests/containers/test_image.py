"""The serving image, built here and run as a container: ready, real PNGs, its healthcheck, its user,
a read-only root, nothing to build or train inside, its memory limit held under attack, and SIGTERM
draining the requests in flight within the grace period."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from PIL import Image

from harness.containers import podman
from harness.ports import free_port
from harness.processes import metric, wait_until
from reliability.memory import MiB, attack, bodies
from tests.containers.conftest import report

GRACE = 10  # VAE_SHUTDOWN_GRACE_SECONDS of the container under test
HELD_MS = 400  # each request waits this long in the batcher: SIGTERM surely finds some in flight


@dataclass
class Running:
    name: str
    url: str
    port: int
    env: dict[str, str]


@pytest.fixture(scope="module")
def container(service_image: str, engine: dict[str, str]) -> Iterator[Running]:
    port = free_port()
    name = f"vae-image-test-{port}"
    podman("network", "create", name, env=engine)  # its own bridge, as compose gives each project
    started = time.perf_counter()
    podman(
        "run", "--detach", "--name", name, "--network", name,
        "--read-only", "--tmpfs", "/tmp", "--memory", "512m",
        "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
        "--health-interval", "disable",  # no systemd here to time it: the test runs the check itself
        "-e", f"VAE_SHUTDOWN_GRACE_SECONDS={GRACE}", "-e", f"VAE_MAX_BATCH_DELAY_MS={HELD_MS}",
        "-p", f"127.0.0.1:{port}:8000", service_image,
        env=engine,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: httpx.get(f"{url}/readyz", timeout=2).status_code == 200, "the container ready")
        report("image", f"ready {time.perf_counter() - started:.2f} s after `podman run`")
        yield Running(name, url, port, engine)
    finally:
        podman("rm", "--force", "--time", "1", name, env=engine, check=False)
        podman("network", "rm", name, env=engine, check=False)


def inside(c: Running, *command: str) -> str:
    return podman("exec", c.name, *command, env=c.env, check=False)


def test_the_image_is_small_and_has_nothing_to_build_or_train_with(service_image: str, engine: dict) -> None:
    size = int(podman("image", "inspect", service_image, "--format", "{{.Size}}", env=engine))
    report("image", f"{service_image}: {size / 1e6:.0f} MB (on the stand-in Debian base)")
    image = json.loads(podman("image", "inspect", service_image, env=engine))[0]
    assert image["Config"]["User"] == "10001:10001"
    assert image["Config"]["Entrypoint"] == ["python", "-m", "service"]
    assert image["Healthcheck"]["Test"] == [
        "CMD",
        "python",
        "-m",
        "service.healthcheck",
    ]  # --format docker kept it


def test_ready_with_real_pngs_its_healthcheck_and_its_user(container: Running) -> None:
    grid = httpx.post(f"{container.url}/sample", json={"n": 4, "seed": 0}, headers={"accept": "image/png"})
    assert grid.status_code == 200 and grid.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(grid.content)).size == (2 * 28 + 3 * 2, 2 * 28 + 3 * 2)
    podman("healthcheck", "run", container.name, env=container.env)  # raises unless healthy
    assert inside(container, "id", "-u") == "10001"


def test_the_root_is_read_only_and_nothing_can_be_installed(container: Running) -> None:
    assert "Read-only file system" in podman(
        "exec",
        container.name,
        "sh",
        "-c",
        "touch /app/x 2>&1; touch /models/x 2>&1",
        env=container.env,
        check=False,
    )
    assert inside(container, "sh", "-c", "touch /tmp/x && echo writable") == "writable"
    modules = "('pip', 'setuptools', 'torch', 'onnx')"
    found = f"import importlib.util as u; print([m for m in {modules} if u.find_spec(m)])"
    assert inside(container, "python", "-c", found) == "[]"
    assert inside(container, "sh", "-c", "command -v gcc cc make apt-get pip || true") in (
        "",
        "/usr/bin/apt-get",
    )


def test_the_memory_limit_holds_under_many_large_bodies(container: Running) -> None:
    limit = inside(
        container,
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
    )
    assert int(limit) == 512 * MiB
    pid = int(podman("inspect", container.name, "--format", "{{.State.Pid}}", env=container.env))
    for body in bodies("mnist", 32, 16 * MiB - 65536, 4 * MiB - 65536):
        result = attack(container.port, pid, body, 64)
        # the bodies' images are noise: the shipped models refuse them as holding no digit (400)
        assert 0 not in result.statuses and set(result.statuses) <= {200, 400, 413, 422, 503}, result
        answers = dict(result.statuses)
        report(
            "image", f"{body.kind}: 64 x {result.body_mib:.0f} MiB, {answers}, peak {result.peak_mib:.0f} MiB"
        )
    state = json.loads(podman("inspect", container.name, env=container.env))[0]["State"]
    assert (
        state["Running"] and not state["OOMKilled"] and state["Restarts"] == 0
        if "Restarts" in state
        else True
    )


def test_sigterm_drains_the_requests_in_flight_within_the_grace(container: Running) -> None:
    answers: list[int] = []

    def decode() -> None:
        with httpx.Client(timeout=30) as client:
            answers.append(client.post(f"{container.url}/decode", json={"z": [[0.0] * 32]}).status_code)

    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(decode)
        # all eight are in (each held HELD_MS in the batcher) before the signal goes
        wait_until(lambda: metric(container.url, "vae_requests_in_flight") >= 8, "8 requests in flight")
        signalled = time.perf_counter()
        podman("stop", "--time", str(GRACE + 5), container.name, env=container.env)  # SIGTERM, then waits
        stopped = time.perf_counter() - signalled
    assert answers == [200] * 8  # every request admitted before SIGTERM was answered
    state = json.loads(podman("inspect", container.name, env=container.env))[0]["State"]
    assert state["ExitCode"] == 0  # it exited by itself, not killed at the end of the grace
    report("image", f"SIGTERM with 8 requests in flight: all answered 200, exited 0 after {stopped:.2f} s")
