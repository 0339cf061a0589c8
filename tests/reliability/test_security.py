"""Bearer tokens, secure headers and /metrics on its own port, on a real server; no stack traces."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from harness import ROOT
from harness.ports import free_port
from harness.processes import service, service_env
from service.main import create_app
from tests.service.conftest import settings_for

pytestmark = pytest.mark.server  # starts real processes

TOKENS = ("first-token", "second-token")
Z = {"z": [[0.0] * 4]}


@pytest.fixture(scope="module")
def secured(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    folder = tmp_path_factory.mktemp("secured")
    tokens = folder / "tokens"
    tokens.write_text(f"# one token per line\n{TOKENS[0]}\n\n{TOKENS[1]}\n")
    port, metrics_port = free_port(), free_port()
    settings = {"default_model": "digits", "api_tokens_file": str(tokens), "metrics_port": str(metrics_port)}
    with service(model_repository, folder, port, **settings):
        yield f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics_port}"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_probes_are_open_and_everything_else_needs_a_token(secured: tuple[str, str]) -> None:
    url, _ = secured
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200
    for path in ("/models", "/openapi.json", "/docs"):
        missing = httpx.get(f"{url}{path}")
        assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
        assert missing.json() == {"detail": "authorization: send a bearer token", "field": "authorization"}
    wrong = httpx.post(f"{url}/decode", json=Z, headers=bearer("first-tokem"))
    assert wrong.status_code == 401 and "not valid" in wrong.json()["detail"]
    assert (
        httpx.post(f"{url}/decode", json=Z, headers={"authorization": f"Basic {TOKENS[0]}"}).status_code
        == 401
    )
    for token in TOKENS:  # every line of the file is a token
        assert httpx.post(f"{url}/decode", json=Z, headers=bearer(token)).status_code == 200


def test_metrics_are_on_their_own_port(secured: tuple[str, str]) -> None:
    url, metrics_url = secured
    httpx.post(f"{url}/decode", json=Z, headers=bearer(TOKENS[0]))
    assert httpx.get(f"{url}/metrics", headers=bearer(TOKENS[0])).status_code == 404
    scrape = httpx.get(f"{metrics_url}/metrics")
    assert scrape.status_code == 200 and 'vae_requests_total{endpoint="/decode"' in scrape.text


def test_responses_carry_secure_headers_and_no_server_banner(secured: tuple[str, str]) -> None:
    url, _ = secured
    for response in (
        httpx.post(f"{url}/decode", json=Z, headers=bearer(TOKENS[0])),
        httpx.get(f"{url}/models"),  # 401
        httpx.get(f"{url}/nowhere", headers=bearer(TOKENS[0])),  # 404
    ):
        h = response.headers
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
        assert h["cache-control"] == "no-store" and h["referrer-policy"] == "no-referrer"
        assert h["content-security-policy"].startswith("default-src 'none'")
        assert "server" not in h and h["x-request-id"]
    docs = httpx.get(f"{url}/docs", headers=bearer(TOKENS[0]))
    assert docs.status_code == 200 and "content-security-policy" not in docs.headers  # its scripts load


def test_an_unreadable_token_file_stops_start_up(tmp_path: Path) -> None:
    env = service_env(tmp_path, free_port(), tmp_path / "metrics", api_tokens_file=str(tmp_path / "missing"))
    run = subprocess.run(
        [sys.executable, "-m", "service"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0 and "VAE_API_TOKENS_FILE" in run.stderr and "cannot be read" in run.stderr


def test_a_bug_answers_500_with_the_request_id_and_no_traceback(model_repository: Path) -> None:
    app = create_app(settings_for(model_repository))

    @app.get("/broken")
    async def broken() -> None:
        raise RuntimeError("secret internals")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/broken", headers={"x-request-id": "bug-1"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error; request_id bug-1"}
    assert "secret" not in response.text and "Traceback" not in response.text
