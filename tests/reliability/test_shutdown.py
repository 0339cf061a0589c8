"""SIGTERM on a real server under load: it stops taking connections, answers every request it had
admitted, and exits within its grace period even when a client never finishes."""

from __future__ import annotations

import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.ports import free_port
from harness.probe import read_answer, request
from harness.processes import metric, service, wait_until

pytestmark = pytest.mark.server  # starts real processes

DELAY_MS = 300  # each request waits this long in the batcher: SIGTERM surely finds some in flight


@dataclass
class Sent:
    start: float  # when the whole request had been written to the socket
    end: float
    status: int  # 0: no answer


def _client(port: int, stop: threading.Event, log: list[Sent], waiting: dict[int, float]) -> None:
    body = request("POST", "/decode", b'{"z": [[0.5, 0.5, 0.5, 0.5]]}', "application/json")
    for _ in range(200):  # bounded; the server's exit ends it sooner
        if stop.is_set():
            return
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        except OSError:
            return  # the listening socket is gone: nothing more will be admitted
        with sock:
            try:
                sock.sendall(body)
            except OSError:
                continue
            start = waiting[threading.get_ident()] = time.monotonic()
            answer = read_answer(sock, start + 30)
            del waiting[threading.get_ident()]
            log.append(Sent(start, time.monotonic(), answer.status))


def test_sigterm_mid_load_answers_every_admitted_request(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = {"default_model": "digits", "max_batch_delay_ms": str(DELAY_MS), "access_log": "false"}
    log: list[Sent] = []
    waiting: dict[int, float] = {}  # client thread -> when its request in flight was written
    stop = threading.Event()
    with service(model_repository, tmp_path, port, **settings) as process, ThreadPoolExecutor(16) as pool:
        clients = [pool.submit(_client, port, stop, log, waiting) for _ in range(16)]
        wait_until(
            lambda: (
                len(log) >= 16
                and min(list(waiting.values()), default=time.monotonic()) < time.monotonic() - 0.1
            ),
            "requests written 100 ms ago and not yet answered",
            process,
            interval=0.01,
        )
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        exited = time.monotonic()
        stop.set()
        for c in clients:
            c.result()
    assert code in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once it has shut down cleanly
    admitted = [s for s in log if s.start < signalled - 0.05]  # sent well before SIGTERM: surely read
    in_flight = [s for s in admitted if s.end > signalled]
    assert in_flight, "no request was in flight at SIGTERM"
    assert all(s.status == 200 for s in admitted), [
        (s.start - signalled, s.end - signalled, s.error) for s in admitted if s.status != 200
    ]
    assert all(s.status in (200, 0) for s in log)  # later ones: answered, or closed unanswered
    assert exited - signalled < 10


def test_shutdown_does_not_wait_past_the_grace_period(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    settings = {"default_model": "digits", "shutdown_grace_seconds": "1", "access_log": "false"}
    with (
        service(model_repository, tmp_path, port, **settings) as process,
        socket.create_connection(("127.0.0.1", port)) as stalled,  # a body that never arrives
    ):
        stalled.sendall(b"POST /decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        stalled.sendall(b"Content-Length: 100\r\n\r\n{")
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: metric(url, "vae_requests_in_flight") >= 1, "the stalled request is read", process)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        waited = time.monotonic() - signalled
    assert 0.9 < waited < 6, waited  # the grace period, plus the time to stop
