"""Overload on real servers: the excess is refused at once with 503 and Retry-After (in-flight limit,
model queue limit, request timeout), nothing else fails, and the metrics count what was refused."""

from __future__ import annotations

from pathlib import Path

import httpx2 as httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.ports import free_port
from harness.processes import service
from reliability.load import Result, drive

pytestmark = pytest.mark.server  # starts real processes

HEAVY = ("POST", "/sample", {"json": {"n": 64, "seed": 1}})


def metric(url: str, name: str, **labels: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
    return sum(
        s.value
        for f in families
        for s in f.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def _overloaded(model_repository: Path, folder: Path, **limits: str) -> tuple[Result, dict[str, float]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with service(model_repository, folder, port, default_model="digits", access_log="false", **limits):
        # clients that do not back off: the worst case for the server
        result = drive(url, 64, 3, lambda i: HEAVY, per_connection=500, backoff=False)
        return result, {
            "shed": metric(url, "vae_shed_total", endpoint="/sample"),
            "rejected": metric(url, "vae_rejected_total", network="decoder"),
            "answered": metric(url, "vae_requests_total", endpoint="/sample", status="200"),
        }


def test_requests_over_the_in_flight_limit_are_refused_at_once(
    model_repository: Path, tmp_path: Path
) -> None:
    result, counted = _overloaded(model_repository, tmp_path, max_in_flight="4")
    assert set(result.statuses) == {200, 503}, result.errors[:5]
    assert result.retry_after == {"1"}
    assert counted["shed"] == result.count(503) and counted["answered"] == result.count(200)


def test_requests_over_the_queue_limit_are_refused_at_once(model_repository: Path, tmp_path: Path) -> None:
    result, counted = _overloaded(model_repository, tmp_path, max_queue="1")
    assert set(result.statuses) == {200, 503}, result.errors[:5]
    assert result.retry_after == {"1"}
    assert counted["rejected"] == result.count(503) > 0 and counted["shed"] == 0


def test_a_request_not_answered_in_time_gets_503(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # a batch that waits a second for company, and a timeout shorter than that
    settings = {"max_batch_delay_ms": "1000", "request_timeout_seconds": "0.3"}
    with service(model_repository, tmp_path, port, default_model="digits", **settings):
        response = httpx.post(f"{url}/decode", json={"z": [[0.0] * 4]}, timeout=10)
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["detail"] == "request: not answered within the limit of 0.3 s; retry shortly"
        assert metric(url, "vae_request_timeouts_total", endpoint="/decode") == 1
        assert httpx.get(f"{url}/healthz").status_code == 200
