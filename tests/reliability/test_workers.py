"""A worker killed under load (SIGKILL, two workers): the supervisor starts a new one, and only the
requests that were on the killed worker fail."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from harness.ports import free_port
from harness.processes import service, wait_until

pytestmark = pytest.mark.server  # starts real processes


def workers(supervisor: psutil.Process) -> set[int]:
    """The live worker processes (a killed one lingers as a zombie until the supervisor reaps it)."""
    found = set()
    for child in supervisor.children():
        try:
            if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                found.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return found


def test_a_killed_worker_is_replaced_and_only_its_requests_fail(
    model_repository: Path, tmp_path: Path
) -> None:
    port = free_port()
    settings = {"default_model": "digits", "workers": "2", "access_log": "false", "max_batch_delay_ms": "20"}
    outcomes: Counter = Counter()
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(3000):  # bounded; stopped sooner
                if stop.is_set():
                    return
                try:
                    outcomes[client.post("/decode", json={"z": [[0.2] * 4]}).status_code] += 1
                except httpx.TransportError:
                    outcomes["dropped"] += 1

    with service(model_repository, tmp_path, port, **settings) as process, ThreadPoolExecutor(8) as pool:
        supervisor = psutil.Process(process.pid)
        wait_until(lambda: len(workers(supervisor)) == 2, "two workers", process)
        first = workers(supervisor)
        loads = [pool.submit(load) for _ in range(8)]
        wait_until(lambda: outcomes[200] >= 200, "the load runs", process)
        victim = min(first)
        psutil.Process(victim).send_signal(signal.SIGKILL)
        wait_until(lambda: len(workers(supervisor) - first) == 1, "a new worker", process, timeout=30)
        replaced = outcomes.total()
        wait_until(lambda: outcomes.total() >= replaced + 400, "the load after the replacement", process)
        stop.set()
        for running in loads:
            running.result()
        after = workers(supervisor)
    assert victim not in after and len(after) == 2
    assert set(outcomes) <= {200, "dropped"}, outcomes
    assert outcomes["dropped"] <= 8, outcomes  # at most the requests in flight on the killed worker
