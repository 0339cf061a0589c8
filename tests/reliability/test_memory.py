"""Memory bounded by design, on a real server: many large bodies at once are held to the body budget
(the rest refused with 503 and Retry-After), and slow clients neither hold memory nor delay others."""

from __future__ import annotations

import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, suppress
from pathlib import Path

import httpx2 as httpx
import pytest

from harness.ports import free_port
from harness.probe import read_answer, usage
from harness.processes import metric, service
from reliability.memory import MiB, attack, bodies

pytestmark = pytest.mark.server  # starts real processes

LATENT_DIM = 4  # of the tiny digits model


def test_many_large_bodies_at_once_stay_within_the_body_budget(
    model_repository: Path, tmp_path: Path
) -> None:
    port = free_port()
    settings = {
        "default_model": "digits",
        "access_log": "false",
        "max_body_bytes": str(2 * MiB),
        "max_image_bytes": str(MiB),
        "max_body_memory_bytes": str(4 * MiB),
    }
    with service(model_repository, tmp_path, port, **settings) as process:
        before = usage(process.pid)
        attacks = [
            attack(port, process.pid, body, 32)
            for body in bodies("digits", LATENT_DIM, 2 * MiB - 4096, MiB // 2)
        ]
        refused = metric(f"http://127.0.0.1:{port}", "vae_body_budget_refused_total")
        assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    for a in attacks:
        assert 0 not in a.statuses, (a.kind, a.statuses)  # every connection got an answer
        assert set(a.statuses) <= {200, 413, 422, 503}, (a.kind, a.statuses)
    assert sum(a.statuses[503] for a in attacks) == refused > 0  # the budget was spent, and counted
    # 32 x 2 MiB bodies of each kind: held to about two at a time
    assert attacks[-1].peak_mib - before.rss / MiB < 96, attacks


def test_slow_clients_hold_no_memory_and_delay_no_one(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = {"default_model": "digits", "access_log": "false", "request_timeout_seconds": "3"}
    url = f"http://127.0.0.1:{port}"
    with service(model_repository, tmp_path, port, **settings) as process, ExitStack() as stack:
        slow = [stack.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(300)]
        for sock in slow:  # more connections than VAE_MAX_IN_FLIGHT, each with a body that trickles
            sock.sendall(b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
            sock.sendall(b"Content-Length: 1000\r\n\r\n{")
        stop = threading.Event()

        def trickle() -> None:
            for _ in range(60):  # bounded: a byte a connection every 0.1 s, for up to 6 s
                if stop.wait(0.1):
                    return
                for sock in slow:
                    with suppress(OSError):
                        sock.sendall(b" ")

        with ThreadPoolExecutor(1) as pool:
            trickling = pool.submit(trickle)
            before = usage(process.pid)
            with httpx.Client(base_url=url, timeout=10) as client:
                answers = [client.post("/decode", json={"z": [[0.1] * LATENT_DIM]}) for _ in range(50)]
            shed = metric(url, "vae_shed_total")
            peak = usage(process.pid).peak
            timed_out = [read_answer(sock, time.monotonic() + 10).status for sock in slow]
            stop.set()
            trickling.result()
    # 300 uploads in progress take no place among the 256 requests in flight: no one was turned away
    assert [a.status_code for a in answers] == [200] * 50 and shed == 0
    assert set(timed_out) == {408}  # each slow body cut off by the request timeout
    assert (peak - before.rss) / MiB < 48
