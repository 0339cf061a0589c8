"""The compose topology for real, under podman-compose: docker-compose.yml as it ships, with an
override file that only names images built here (the service on a Debian base, nginx and Prometheus
from Debian's packages) and Prometheus' intervals for a test. Grafana has no Debian package: its
provisioning and dashboard are checked offline (tests/deploy/). Under load at the gateway: both
replicas serve; one killed mid-load, then a scale to three, then a rolling restart, and not one
request fails; Prometheus sees every replica; many large bodies kill no container; stopping a
replica waits for what it was answering."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from harness import ROOT
from harness.containers import NGINX, PROMETHEUS, podman, standin
from harness.ports import free_port
from harness.processes import wait_until
from reliability.memory import MiB, attack, bodies
from tests.containers.conftest import report

PROJECT = "vaeci"
COMPOSE = str(Path(sys.executable).with_name("podman-compose"))  # from the dev extras
PACE = 0.04  # seconds between one client's requests: 8 clients, ~200 a second, under the gateway's rate


@dataclass
class Topology:
    gateway: str
    env: dict[str, str]
    files: list[str]

    def compose(self, *args: str, timeout: float = 300) -> str:
        command = [COMPOSE, "-p", PROJECT, *[a for f in self.files for a in ("-f", f)], *args]
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout

    def replicas(self) -> list[str]:
        names = podman(
            "ps", "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", "label=com.docker.compose.service=vae", "--format", "{{.Names}}",
            env=self.env,
        )  # fmt: skip
        return sorted(names.split())

    def upstream(self) -> list[str]:
        """The replicas' addresses the gateway sends to now."""
        conf = podman("exec", f"{PROJECT}_gateway_1", "cat", "/tmp/gateway/replicas.conf", env=self.env)
        return [
            line.split()[1] for line in conf.splitlines() if line.startswith("server") and "down" not in line
        ]

    def prometheus(self, path: str) -> dict:
        url = f"http://prometheus:9090{path}"  # from inside the network: Prometheus is not published
        return json.loads(podman("exec", f"{PROJECT}_gateway_1", "curl", "-fsS", url, env=self.env))

    def served(self, replica: str) -> float:
        """/decode requests one replica counted, from its own /metrics."""
        read = "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8000/metrics').read().decode())"
        text = podman("exec", replica, "python", "-c", read, env=self.env)
        return sum(
            s.value
            for f in text_string_to_metric_families(text)
            for s in f.samples
            if s.name == "vae_requests_total" and s.labels["endpoint"] == "/decode"
        )


def _prometheus_config(folder: Path) -> Path:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    config["global"] |= {"scrape_interval": "1s", "evaluation_interval": "1s"}
    for job in config["scrape_configs"]:
        for discovery in job.get("dns_sd_configs", []):
            discovery["refresh_interval"] = "2s"  # the test cannot wait 15 s for a new replica
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def _override(folder: Path, image: str) -> Path:
    """What the test changes of docker-compose.yml: images, shorter grace, Prometheus' intervals."""
    override = {
        "services": {
            "vae": {
                "image": image,
                "environment": {"VAE_SHUTDOWN_GRACE_SECONDS": "5"},
                "stop_grace_period": "10s",
            },
            "gateway": {"image": NGINX.tag},
            "prometheus": {
                "image": PROMETHEUS.tag,
                "volumes": [f"{_prometheus_config(folder)}:/etc/prometheus/ci.yml:ro"],
                "command": ["--config.file=/etc/prometheus/ci.yml"],
            },
        }
    }
    path = folder / "compose.override.yml"
    path.write_text(yaml.safe_dump(override))
    return path


def _remove_project(env: dict[str, str]) -> None:
    """Everything of the project, replicas added by --scale included (podman-compose down misses them)."""
    label = f"label=com.docker.compose.project={PROJECT}"
    # again while any is left: a replica that its restart policy was bringing back as the first
    # removal ran outlived it once (a few passes, each bounded by podman's own stop timeout)
    for _ in range(5):
        names = podman(
            "ps", "--all", "--filter", label, "--format", "{{.Names}}", env=env, check=False
        ).split()
        if not names:
            break
        podman("rm", "--force", "--time", "2", *names, env=env, check=False)
    podman("network", "rm", f"{PROJECT}_backend", env=env, check=False)


@pytest.fixture(scope="module")
def topology(
    service_image: str, engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Topology]:
    folder = tmp_path_factory.mktemp("compose")
    for image in (NGINX, PROMETHEUS):
        seconds = standin(image, engine)
        report("compose", f"stand-in {image.tag} built in {seconds:.0f} s (0: it existed)")
    port = free_port()
    env = engine | {"VAE_GATEWAY_PORT": str(port), "GRAFANA_ADMIN_PASSWORD": "not-started-in-this-test"}
    top = Topology(
        f"http://127.0.0.1:{port}", env, ["docker-compose.yml", str(_override(folder, service_image))]
    )
    _remove_project(env)
    started = time.perf_counter()
    top.compose("up", "--detach", "vae", "gateway", "prometheus")
    try:
        wait_until(lambda: len(top.upstream()) == 2, "the gateway to resolve both replicas", timeout=60)
        wait_until(lambda: httpx.get(f"{top.gateway}/readyz", timeout=2).status_code == 200, "the gateway")
        report(
            "compose", f"up and ready through the gateway {time.perf_counter() - started:.1f} s after `up`"
        )
        yield top
    finally:
        _remove_project(env)


@contextmanager
def load(gateway: str, clients: int = 8) -> Iterator[Counter]:
    """``clients`` clients sending /decode to the gateway, paced, until the block ends (bounded)."""
    outcomes: Counter = Counter()
    stop = threading.Event()

    def client() -> None:
        headed = threading.Event()  # this client's last request had an answer's head back
        hooks = {"request": [lambda _: headed.clear()], "response": [lambda _: headed.set()]}
        with httpx.Client(base_url=gateway, timeout=30, event_hooks=hooks) as http:
            for i in range(3000):  # bounded: at PACE, two minutes at most
                if stop.wait(PACE):
                    return
                body = {"z": [[0.01 * (i % 9)] * 32]}
                try:
                    outcomes[http.post("/decode", json=body).status_code] += 1
                except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as e:
                    if headed.is_set():  # an answer had begun: it was cut, a failure
                        outcomes[type(e).__name__] += 1
                        continue
                    # the gateway closed this idle keep-alive connection as the request went out (a
                    # reload's old workers do, with a FIN or, when the request had already arrived, a
                    # reset): nothing was answered, and HTTP lets a client send the request again on
                    # a new connection (RFC 9112, 9.3.1), as client libraries do
                    outcomes["sent again on a new connection"] += 1
                    outcomes[http.post("/decode", json=body).status_code] += 1
                except httpx.TransportError as e:
                    outcomes[type(e).__name__] += 1

    with ThreadPoolExecutor(clients) as pool:
        running = [pool.submit(client) for _ in range(clients)]
        try:
            yield outcomes
        finally:
            stop.set()
            for future in running:
                future.result()


def at_least(outcomes: Counter, count: int) -> Callable[[], bool]:
    return lambda: outcomes[200] >= count


def failed(outcomes: Counter) -> Counter:
    return Counter({k: n for k, n in outcomes.items() if k not in (200, "sent again on a new connection")})


def healthy(replica: str, env: dict[str, str]) -> Callable[[], bool]:
    return lambda: subprocess.run(["podman", "healthcheck", "run", replica], env=env).returncode == 0


def test_both_replicas_serve_through_the_gateway(topology: Topology) -> None:
    replicas = topology.replicas()
    before = {r: topology.served(r) for r in replicas}
    with load(topology.gateway) as outcomes:
        wait_until(at_least(outcomes, 300), "300 requests through the gateway")
    assert not failed(outcomes), outcomes
    gained = {r: topology.served(r) - before[r] for r in replicas}
    assert len(replicas) == 2 and all(n > 50 for n in gained.values()), gained


def test_a_replica_killed_mid_load_fails_no_request(topology: Topology) -> None:
    victim = topology.replicas()[-1]
    with load(topology.gateway) as outcomes:
        wait_until(at_least(outcomes, 200), "the load runs")
        podman("kill", victim, env=topology.env)  # SIGKILL: connections drop mid-request
        killed_at = outcomes[200]
        wait_until(at_least(outcomes, killed_at + 600), "600 requests after the kill")
    assert not failed(outcomes), outcomes  # the gateway retried what the dead replica dropped
    report("compose", f"kill of one replica mid-load: {dict(outcomes)}, none failed")
    podman("start", victim, env=topology.env)
    wait_until(healthy(victim, topology.env), "the replica healthy again")
    wait_until(lambda: len(topology.upstream()) == 2, "the replica back behind the gateway")


def test_scaling_to_three_puts_the_new_replica_to_work(topology: Topology) -> None:
    topology.compose("up", "--detach", "--scale", "vae=3", "vae")
    newest = topology.replicas()[-1]
    wait_until(healthy(newest, topology.env), f"{newest} healthy")
    wait_until(lambda: len(topology.upstream()) == 3, "the gateway to follow the scale", timeout=60)
    before = topology.served(newest)
    with load(topology.gateway) as outcomes:
        wait_until(at_least(outcomes, 300), "300 requests")
    assert not failed(outcomes), outcomes
    assert topology.served(newest) - before > 30  # the new replica took its share


def test_prometheus_scrapes_every_replica_and_loads_the_alerts(topology: Topology) -> None:
    def targets() -> list[dict]:
        active = topology.prometheus("/api/v1/targets")["data"]["activeTargets"]
        return [t for t in active if t["labels"]["job"] == "vae-service"]

    wait_until(lambda: len(targets()) == 3 and all(t["health"] == "up" for t in targets()), "3 targets up")
    rules = topology.prometheus("/api/v1/rules")["data"]["groups"][0]["rules"]
    assert len(rules) == 7 and all(r["state"] == "inactive" for r in rules), rules


def test_a_rolling_restart_fails_no_request(topology: Topology) -> None:
    with load(topology.gateway) as outcomes:
        wait_until(at_least(outcomes, 100), "the load runs")
        for replica in topology.replicas():
            podman("restart", "--time", "10", replica, env=topology.env)  # SIGTERM, drain, start again
            wait_until(healthy(replica, topology.env), f"{replica} healthy again")
        restarted_at = outcomes[200]
        wait_until(at_least(outcomes, restarted_at + 100), "requests after the restart")
    assert not failed(outcomes), outcomes
    report("compose", f"rolling restart of 3 replicas under load: {dict(outcomes)}, none failed")


def test_many_large_bodies_at_the_gateway_kill_no_container(topology: Topology) -> None:
    port = int(topology.gateway.rsplit(":", 1)[1])
    for body in bodies("mnist", 32, 16 * MiB - 65536, 4 * MiB - 65536):
        result = attack(port, None, body, 48)  # the replicas' memory: their limits
        # the bodies' images are noise: the shipped models refuse them as holding no digit (400)
        allowed = {200, 400, 413, 422, 429, 503}
        assert 0 not in result.statuses and set(result.statuses) <= allowed, result
    for replica in topology.replicas():
        state = json.loads(podman("inspect", replica, env=topology.env))[0]["State"]
        assert state["Running"] and not state["OOMKilled"], (replica, state)


def test_stopping_a_replica_waits_for_what_it_answers(topology: Topology) -> None:
    replica = topology.replicas()[0]
    started = time.perf_counter()
    podman("stop", "--time", "10", replica, env=topology.env)
    took = time.perf_counter() - started
    state = json.loads(podman("inspect", replica, env=topology.env))[0]["State"]
    assert state["ExitCode"] == 0  # it drained and exited by itself within its grace, not killed
    report(
        "compose", f"`podman stop` of a replica: exited 0 after {took:.1f} s (grace 5 s, stop timeout 10 s)"
    )
