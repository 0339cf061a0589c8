"""Real server processes for the end-to-end tests: start, wait until they answer, stop for sure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx

from harness import ROOT


def wait_until(
    check: Callable[[], bool],
    what: str,
    process: subprocess.Popen | None = None,
    timeout: float = 60,
    interval: float = 0.05,
) -> None:
    """Poll ``check`` (bounded in time, and while ``process`` lives when one is given); raise with
    ``what`` when it never holds. Tests wait for a state this way, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {process.returncode}")
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        time.sleep(interval)
    raise TimeoutError(f"{what}: not after {timeout}s")


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples with these labels, from the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def answers(url: str, status: int = 200) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=2).status_code == status


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def running(
    command: Sequence[str], log: Path, ready: Callable[[], bool] | None, env: dict | None = None, **kw
) -> Iterator[subprocess.Popen]:
    """Run ``command`` with its output in ``log``; yield once ``ready`` holds; SIGTERM it at the end."""
    with log.open("w") as out:
        process = subprocess.Popen(list(command), stdout=out, stderr=subprocess.STDOUT, env=env, **kw)
        try:
            if ready is not None:
                wait_until(ready, f"{command[0]} ({log.name})", process)
            yield process
        finally:
            stop(process)


def service_env(models: Path, port: int, metrics_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for ``python -m service``: VAE_* settings given as lower-case keyword names. One
    worker unless told (the service's default is one per CPU): tests and benchmarks say what they run."""
    values = {"models_dir": str(models), "port": str(port), "workers": "1"} | settings
    return (
        os.environ
        | {f"VAE_{k.upper()}": v for k, v in values.items()}
        | {"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    )


@contextmanager
def service(
    models: Path,
    folder: Path,
    port: int,
    python: str = sys.executable,
    cwd: Path | str = ROOT,
    **settings: str,
) -> Iterator[subprocess.Popen]:
    """``python -m service`` on 127.0.0.1:port, logging to folder/service-<port>.log, once ready."""
    env = service_env(models, port, folder / f"metrics-{port}", **settings)
    log = folder / f"service-{port}.log"
    url = f"http://127.0.0.1:{port}/readyz"
    with running([python, "-m", "service"], log, answers(url), env=env, cwd=cwd) as process:
        yield process
