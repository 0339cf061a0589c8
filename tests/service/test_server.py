"""A real uvicorn process on 127.0.0.1, as clients and operators meet it."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.files import encode_image
from harness.ports import free_port
from harness.processes import service

pytestmark = pytest.mark.server  # starts real processes


@pytest.fixture(scope="module")
def server(
    model_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path, Path]]:
    """``python -m service`` with 2 workers and JSON logs; yields (url, log file, metrics folder)."""
    port = free_port()
    folder = tmp_path_factory.mktemp("server")
    settings = {"default_model": "digits", "workers": "2", "log_format": "json"}
    with service(model_repository, folder, port, **settings):
        yield f"http://127.0.0.1:{port}", folder / f"service-{port}.log", folder / f"metrics-{port}"


def test_real_png_and_jpeg_uploads(server: tuple, digit_images: np.ndarray) -> None:
    url, _, _ = server
    files = [
        ("files", ("a.png", encode_image(digit_images[0], "PNG"), "image/png")),
        ("files", ("b.jpg", encode_image(digit_images[1], "JPEG"), "image/jpeg")),
    ]
    response = httpx.post(f"{url}/encode", files=files, timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == "digits" and np.array(body["mu"]).shape == (2, 4)
    png = httpx.post(f"{url}/decode", json={"z": body["mu"]}, headers={"accept": "image/png"}, timeout=10)
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")


def test_bad_input_is_a_4xx_and_the_server_stays_up(server: tuple) -> None:
    url, _, _ = server
    assert (
        httpx.post(
            f"{url}/decode", content=b"{nope", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )
    # declare a 17 MiB body, send a few bytes of it: the answer comes without the rest being read
    port = int(url.rsplit(":", 1)[1])
    head = (
        "POST /encode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {17 << 20}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode() + b'{"images": ["')
        answer = b""
        while b"}" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413") and b"more than the limit of 16777216 bytes" in answer
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}


def test_access_logs_are_json_with_the_request_id(server: tuple) -> None:
    url, log_path, _ = server
    response = httpx.post(f"{url}/sample", json={"n": 1, "seed": 1}, headers={"x-request-id": "trace-42"})
    assert response.headers["x-request-id"] == "trace-42"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
        hits = [rec for rec in lines if rec.get("request_id") == "trace-42"]
        if hits:
            break
        time.sleep(0.2)
    assert (
        hits
        and hits[0]["status"] == 200
        and hits[0]["path"] == "/sample"
        and hits[0]["logger"] == "service.access"
    )


def test_metrics_add_up_across_two_workers(server: tuple) -> None:
    url, _, metrics_dir = server

    def sample_count() -> float:
        text = httpx.get(f"{url}/metrics", timeout=10).text  # a new connection: any worker may answer
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "vae_requests_total" and s.labels.get("endpoint") == "/interpolate"
        )

    def interpolate(i: int) -> int:
        body = {"start": {"z": [0.0] * 4}, "end": {"z": [float(i)] * 4}, "steps": 3}
        return httpx.post(f"{url}/interpolate", json=body, timeout=10).status_code

    def workers_with_counters() -> set[str]:
        return {p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}

    before, sent = sample_count(), 0
    with ThreadPoolExecutor(8) as pool:  # concurrent clients keep one worker busy while the other accepts
        while sent < 400 and (sent == 0 or len(workers_with_counters()) < 2):
            assert set(pool.map(interpolate, range(40))) == {200}
            sent += 40
    assert len(workers_with_counters()) == 2  # both workers answered and wrote their counters
    assert {sample_count() for _ in range(8)} == {before + sent}  # every scrape sees every worker's count
