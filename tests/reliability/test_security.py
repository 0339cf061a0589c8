"""Bearer tokens, secure headers and /metrics on its own port, on a real server; no stack traces."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient

from harness import ROOT
from harness.ports import free_port
from harness.probe import exchange, read_answer, request
from harness.processes import service, service_env, wait_until
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
    assert docs.status_code == 200 and "script-src 'self';" in docs.headers["content-security-policy"]
    sources = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert sources and all(s.startswith("/static/") for s in sources)  # nothing from a CDN
    for source in sources:
        assert httpx.get(f"{url}{source}", headers=bearer(TOKENS[0])).status_code == 200


def test_the_web_page_and_its_files_open_without_a_token_under_a_csp_without_inline_code(
    secured: tuple[str, str],
) -> None:
    """A browser cannot send a bearer token when it opens a page: the page and its static files are
    open, and the page sends the token it is given with each API call (tests/browser)."""
    url, _ = secured
    page = httpx.get(f"{url}/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "style-src 'self';" in csp and "unsafe" not in csp
    assert "connect-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "<script>" not in page.text and " style=" not in page.text  # nothing inline for the CSP to refuse
    sources = re.findall(r'(?:src|href)="(/static/[^"]+)"', page.text)
    assert "/static/ui/page.js" in sources
    scripts = [f"/static/ui/{name}" for name in ("page.js", "api.js", "charts.js", "pad.js")]
    for source in {*sources, *scripts}:
        response = httpx.get(f"{url}{source}")
        assert response.status_code == 200, source
        # every import and every fetch stays on this origin
        assert "http://" not in response.text and "https://" not in response.text, source
    assert httpx.get(f"{url}/models").status_code == 401  # the API behind it still needs the token
    for escape in ("/static/%2e%2e/main.py", "/static/ui/..%2F..%2Fmain.py"):  # no way out of static/
        assert httpx.get(f"{url}{escape}").status_code == 404


def test_two_authorization_headers_are_refused(secured: tuple[str, str]) -> None:
    url, _ = secured
    twice = [("authorization", f"Bearer {TOKENS[0]}"), ("authorization", "Bearer whatever")]
    response = httpx.post(f"{url}/decode", json=Z, headers=twice)
    assert response.status_code == 401 and "one Authorization header" in response.json()["detail"]


def test_no_redirect_echoes_the_host_header(secured: tuple[str, str]) -> None:
    url, _ = secured
    response = httpx.get(f"{url}/models/", headers={**bearer(TOKENS[0]), "host": "evil.example"})
    assert response.status_code == 404 and "location" not in response.headers


@pytest.mark.parametrize("tokens", [",", " , ", ""])
def test_tokens_configured_but_empty_stop_start_up(tmp_path: Path, tokens: str) -> None:
    env = service_env(tmp_path, free_port(), tmp_path / "metrics", api_tokens=tokens)
    run = subprocess.run(
        [sys.executable, "-m", "service"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0 and "VAE_API_TOKENS is set but holds no token" in run.stderr


def test_control_characters_cannot_forge_access_log_lines(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    with service(model_repository, tmp_path, port, default_model="digits") as process:
        forged = request("GET", "/a%0d%0a2026-01-01%2000:00:00%20INFO%20service.access%20forged%1b%5B2J")
        assert exchange(port, [forged]).status == 404
        log = tmp_path / f"service-{port}.log"
        wait_until(lambda: "request_id=" in log.read_text(), "the access log line", process)
    lines = [line for line in log.read_text().splitlines() if "service.access" in line]
    assert not any(line.startswith("2026-01-01") for line in lines)  # no line of the client's making
    assert any("/a\\r\\n2026-01-01" in line and "\\x1b[2J" in line for line in lines), lines
    assert "\x1b" not in log.read_text()


def test_half_sent_heads_are_closed_and_probes_answer_past_the_connection_limit(
    model_repository: Path, tmp_path: Path
) -> None:
    port = free_port()
    settings = {"default_model": "digits", "max_connections": "20", "head_timeout_seconds": "1"}
    with service(model_repository, tmp_path, port, **settings), ExitStack() as stack:
        sockets = [stack.enter_context(socket.create_connection(("127.0.0.1", port))) for _ in range(30)]
        for sock in sockets[::2]:
            sock.sendall(b"GET /models HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # and nothing more
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/healthz").status_code == 200  # 30 connections over 20: probes still answer
        assert httpx.get(f"{url}/readyz").status_code == 200
        answers = [read_answer(sock, time.monotonic() + 10) for sock in sockets]
        assert [a.status for a in answers[::2]] == [408] * 15  # the half heads, told why
        assert [a.status for a in answers[1::2]] == [0] * 15  # the silent ones, closed without a word
        assert "VAE_HEAD_TIMEOUT_SECONDS" in answers[0].detail()
        assert httpx.get(f"{url}/models").status_code == 200


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
