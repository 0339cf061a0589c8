"""The compose topology for real, without Docker: two service processes, nginx running the repository's
gateway config and Prometheus running its scrape config, all on 127.0.0.1. Only the lines the configs
mark "templated" (addresses, ports) and the scrape interval are rewritten for the test."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import ROOT
from harness.ports import free_port
from harness.processes import answers, running, service, wait_until

DEPLOY = ROOT / "deploy"
NGINX, PROMETHEUS = shutil.which("nginx") or "/usr/sbin/nginx", shutil.which("prometheus")
pytestmark = [
    pytest.mark.server,  # starts real processes
    pytest.mark.skipif(
        not (Path(NGINX).exists() and PROMETHEUS),
        reason="needs nginx and prometheus from Debian's packages: make system-deps (CI runs it)",
    ),
]
# what entrypoint.sh writes for each replica it resolves
REPLICA_OPTIONS = re.search(
    r'echo "server \$address:\$port (.*);"', (DEPLOY / "nginx" / "entrypoint.sh").read_text()
)


def gateway_config(folder: Path, port: int, upstreams: list[int]) -> Path:
    """The repository's gateway.conf with its templated lines pointed at this test's processes,
    inside a minimal main config (the official nginx image provides that part)."""
    site = (DEPLOY / "nginx" / "gateway.conf").read_text()
    include = re.search(r"^\s*include /tmp/gateway/replicas.conf;\s*# templated.*$", site, re.M)
    assert include and REPLICA_OPTIONS, "gateway.conf lost its templated upstream line"
    servers = "\n".join(f"    server 127.0.0.1:{p} {REPLICA_OPTIONS[1]};" for p in upstreams)
    site = site.replace(include[0], servers)
    site, listens = re.subn(
        r"^\s*listen 8080;\s*# templated$", f"    listen 127.0.0.1:{port};", site, flags=re.M
    )
    assert listens == 1, "gateway.conf lost its templated listen line"
    site = site.replace("/var/log/nginx/access.log", str(folder / "access.log"))
    (folder / "gateway.conf").write_text(site)
    temp = "\n".join(
        f"    {kind}_temp_path {folder / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may read this test's 0700 folders
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}worker_processes 2;\npid {folder / 'nginx.pid'};\n"
        f"error_log {folder / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n{temp}\n    include {folder / 'gateway.conf'};\n}}\n"
    )
    return main


def prometheus_config(folder: Path, targets: list[int], self_port: int) -> Path:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"]["scrape_interval"] = "1s"  # the test cannot wait 15 s per scrape
    config["global"]["evaluation_interval"] = "1s"
    for job in config["scrape_configs"]:
        if job["job_name"] == "vae-service":
            job.pop("dns_sd_configs")  # templated: Docker's DNS is replaced by the test's addresses
            job["static_configs"] = [{"targets": [f"127.0.0.1:{p}" for p in targets]}]
        else:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{self_port}"]}]
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    shutil.copy(DEPLOY / "prometheus" / "alerts.yml", folder / "alerts.yml")  # rule_files, beside it
    return path


@dataclass
class Topology:
    gateway: str
    replicas: dict[int, object]  # port -> subprocess.Popen
    prometheus: str
    folder: Path  # logs of nginx (access.log, error.log) and the replicas


@pytest.fixture(scope="module")
def topology(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("topology")
    ports = [free_port(), free_port()]
    gateway_port, prometheus_port = free_port(), free_port()
    nginx_conf = gateway_config(folder, gateway_port, ports)
    prom_conf = prometheus_config(folder, ports, prometheus_port)
    gateway_url, prometheus_url = f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{prometheus_port}"
    subprocess.run([NGINX, "-t", "-q", "-e", str(folder / "error.log"), "-c", str(nginx_conf)], check=True)
    with (
        service(model_repository, folder, ports[0], default_model="digits") as first,
        service(model_repository, folder, ports[1], default_model="digits") as second,
        running(
            [NGINX, "-e", str(folder / "error.log"), "-c", str(nginx_conf), "-g", "daemon off;"],
            folder / "nginx.log",
            answers(f"{gateway_url}/readyz"),
        ),
        running(
            [
                PROMETHEUS,
                f"--config.file={prom_conf}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
            ],
            folder / "prometheus.log",
            answers(f"{prometheus_url}/-/ready"),
        ),
    ):
        yield Topology(gateway_url, {ports[0]: first, ports[1]: second}, prometheus_url, folder)


def decode(url: str, i: int) -> httpx.Response:
    body = {"z": [[0.1 * (i % 7), -0.2, 0.3, 0.0]], "format": "array"}
    return httpx.post(f"{url}/decode", json=body, headers={"x-request-id": f"req-{i}"}, timeout=30)


def served(port: int) -> float:
    """/decode requests a replica counted, read from its own /metrics."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return sum(
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "vae_requests_total" and s.labels["endpoint"] == "/decode"
    )


def query(prometheus: str, expr: str) -> list[dict]:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_requests_reach_both_replicas_with_their_request_ids(topology: Topology) -> None:
    before = {port: served(port) for port in topology.replicas}
    responses = [decode(topology.gateway, i) for i in range(40)]
    assert [r.status_code for r in responses] == [200] * 40
    assert [r.headers["x-request-id"] for r in responses] == [f"req-{i}" for i in range(40)]
    gained = {port: served(port) - before[port] for port in topology.replicas}
    assert sum(gained.values()) == 40 and all(n > 0 for n in gained.values()), gained
    # the gateway makes an id when the client sends none, and the replica answers with it
    assert httpx.get(f"{topology.gateway}/healthz").headers["x-request-id"]


def test_gateway_refuses_oversize_bodies_and_hides_metrics(topology: Topology) -> None:
    big = httpx.post(
        f"{topology.gateway}/encode",
        content=b"x" * (17 << 20),
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert big.status_code == 413
    assert httpx.get(f"{topology.gateway}/metrics").status_code == 404


def test_prometheus_scrapes_both_replicas_with_their_counts(topology: Topology) -> None:
    for i in range(10):
        assert decode(topology.gateway, i).status_code == 200
    expected = {f"127.0.0.1:{port}": served(port) for port in topology.replicas}
    expr = 'sum by (instance) (vae_requests_total{job="vae-service", endpoint="/decode"})'

    def scraped() -> dict[str, float]:
        return {r["metric"]["instance"]: float(r["value"][1]) for r in query(topology.prometheus, expr)}

    process = next(iter(topology.replicas.values()))
    wait_until(lambda: scraped() == expected, f"Prometheus to scrape {expected}", process, timeout=30)
    # every chart of the Grafana dashboard is a query Prometheus accepts, and the main ones have data
    # once two scrapes of the new counters are in (rates need two points)
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "vae-service.json").read_text())
    must_have_data = {"Request rate", "Latency percentiles", "Images per second", "Replicas up"}

    def charts_without_data() -> list[str]:
        return [
            target["expr"]
            for panel in dashboard["panels"]
            for target in panel["targets"]
            if not query(topology.prometheus, target["expr"].replace("$__rate_interval", "30s"))
            and panel["title"] in must_have_data
        ]

    wait_until(lambda: not charts_without_data(), "dashboard queries to have data", process, timeout=30)

    # the alerting rules are loaded and evaluated, and none fires on a healthy topology
    def rules() -> list[dict]:
        groups = httpx.get(f"{topology.prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        assert [g["name"] for g in groups] == ["vae-service"]
        return groups[0]["rules"]

    wait_until(lambda: all(r["health"] == "ok" for r in rules()), "the rules to be evaluated", process)
    assert len(rules()) == 7 and all(r["state"] == "inactive" for r in rules()), rules()


def test_killing_a_replica_mid_run_loses_no_request(topology: Topology) -> None:
    victim_port, survivor_port = list(topology.replicas)
    victim = topology.replicas[victim_port]
    survivor_before = served(survivor_port)
    done = threading.Event()
    answered: list[int] = []

    def client(i: int) -> int:
        status = decode(topology.gateway, i).status_code
        answered.append(status)
        return status

    def kill_after_some() -> None:
        deadline = time.monotonic() + 30
        while len(answered) < 60 and time.monotonic() < deadline:
            time.sleep(0.005)
        victim.send_signal(signal.SIGKILL)  # no goodbye: connections drop mid-request
        done.set()

    killer = threading.Thread(target=kill_after_some)
    killer.start()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(client, range(400)))
    killer.join()
    assert done.is_set() and victim.wait(timeout=10) == -signal.SIGKILL
    # the gateway retried what the dead replica dropped, and no answer was cut between its head and
    # its body (they leave in one write: service/protocol.py)
    assert Counter(statuses) == {200: 400}
    assert served(survivor_port) - survivor_before > 200  # after the kill, the survivor took it all
    retried = [
        ln for ln in (topology.folder / "access.log").read_text().splitlines() if f":{victim_port}, " in ln
    ]
    assert retried and all("upstream_status=502, 200" in ln for ln in retried)
    # passive health check: after max_fails failures nginx stops sending to the dead replica
    assert "upstream server temporarily disabled" in (topology.folder / "error.log").read_text()


def test_the_gateway_sets_the_client_address_and_keeps_admin_and_docs_private(topology: Topology) -> None:
    spoofed = {"x-forwarded-for": "203.0.113.66", "x-request-id": "spoof-1"}
    assert httpx.get(f"{topology.gateway}/healthz", headers=spoofed).status_code == 200
    logs = [p.read_text() for p in topology.folder.glob("service-*.log")]
    assert any("spoof-1" in log for log in logs)
    assert not any("203.0.113.66" in log for log in logs)  # the replica logged the gateway's view
    for path in ("/admin/reload", "/docs", "/openapi.json", "/metrics"):
        assert (
            httpx.request("POST" if "admin" in path else "GET", f"{topology.gateway}{path}").status_code
            == 404
        )


def test_one_client_over_its_rate_is_told_to_slow_down(topology: Topology) -> None:
    refusals: list[httpx.Response] = []

    def burst(_: int) -> list[int]:
        with httpx.Client(timeout=10) as client:
            responses = [client.get(f"{topology.gateway}/healthz") for _ in range(100)]
        refusals.extend(r for r in responses if r.status_code == 429)
        return [r.status_code for r in responses]

    with ThreadPoolExecutor(16) as pool:  # 1,600 requests at once: the burst allowance is 600
        statuses = Counter(s for batch in pool.map(burst, range(16)) for s in batch)
    assert statuses[200] >= 600 and statuses[429] > 0 and set(statuses) == {200, 429}, statuses
    assert refusals[0].headers["retry-after"] == "1" and refusals[0].json()["field"] == "requests"
    wait_until(
        lambda: httpx.get(f"{topology.gateway}/healthz").status_code == 200,
        "the rate limit to let requests through again",
        timeout=10,
    )


@pytest.mark.parametrize("command", [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]])
def test_the_alerting_rules_check_and_pass_their_unit_tests(command: list[str]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with Debian's prometheus package"
    result = subprocess.run([promtool, *command], cwd=DEPLOY / "prometheus", capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
