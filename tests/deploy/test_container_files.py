"""The container files, checked with the tools of their field: hadolint, the Compose specification's
schema, and what the topology promises (only the gateway published, replicas, pinned serving deps)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement

from harness import ROOT
from service import metrics
from tests.deploy.dockerfile import stages

BIN = Path(sys.executable).parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (it comes with the dev extras: pip install -e '.[dev]')")
    return str(path)


def test_hadolint_passes() -> None:
    result = subprocess.run([_tool("hadolint"), "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_follows_the_compose_specification() -> None:
    command = [_tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", "docker-compose.yml"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_the_gateway_and_grafana_on_loopback_are_published() -> None:
    services = COMPOSE["services"]
    published = {name for name, spec in services.items() if spec.get("ports")}
    assert published == {"gateway", "grafana"}
    assert all(p.startswith("127.0.0.1:") for p in services["grafana"]["ports"])
    assert services["gateway"]["ports"] == [
        "${VAE_GATEWAY_ADDRESS:-127.0.0.1}:${VAE_GATEWAY_PORT:-8080}:8080"
    ]  # loopback unless told


def test_grafana_has_no_default_password_and_replicas_believe_only_the_gateway() -> None:
    services = COMPOSE["services"]
    password = services["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
    assert password.startswith("${GRAFANA_ADMIN_PASSWORD:?")  # compose refuses to start without one
    gateway_address = services["gateway"]["networks"]["backend"]["ipv4_address"]
    assert services["vae"]["environment"]["VAE_FORWARDED_ALLOW_IPS"] == gateway_address
    assert services["vae"]["deploy"]["replicas"] >= 2
    assert "container_name" not in services["vae"]  # a fixed name would forbid --scale


def test_compose_mounts_the_configs_of_this_repository() -> None:
    for name, spec in COMPOSE["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"
    gateway_mounts = COMPOSE["services"]["gateway"]["volumes"]
    assert "./deploy/nginx/gateway.conf:/etc/nginx/conf.d/default.conf:ro" in gateway_mounts
    assert "./deploy/nginx/entrypoint.sh:/etc/nginx/gateway-entrypoint.sh:ro" in gateway_mounts


def test_replicas_get_longer_to_stop_than_their_grace_period() -> None:
    vae = COMPOSE["services"]["vae"]
    grace = int(vae["environment"]["VAE_SHUTDOWN_GRACE_SECONDS"])
    assert int(vae["stop_grace_period"].rstrip("s")) > grace  # else Docker kills mid-drain


def test_dockerfile_final_stage_is_slim_and_unprivileged() -> None:
    install, final = stages()
    assert install.name == "install" and final.base == install.base and "slim" in final.base
    (install_run,) = install.args("RUN")
    assert install_run.startswith("--mount=type=secret,id=pip-ca") and install_run.endswith(
        "deploy/install.sh /opt/venv"
    )  # a CA bundle for pip as a build secret, never a layer
    assert "@sha256:" in install.base  # pinned by digest, as the requirements are by hash
    user = final.args("USER")[-1].split(":")[0]
    assert user.isdigit() and int(user) != 0
    runs = " ".join(final.args("RUN"))
    assert not re.search(r"\b(pip|apt-get|gcc|make)\b", runs)  # nothing is built or installed there
    assert "service.healthcheck" in final.args("HEALTHCHECK")[0]
    assert final.exec_form("ENTRYPOINT") == ["python", "-m", "service"]  # exec form: signals reach it


def test_dockerignore_keeps_everything_but_what_the_image_copies() -> None:
    lines = [ln for ln in (ROOT / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    allowed = [ln[1:].rstrip("/") for ln in lines if ln.startswith("!")]
    assert all((ROOT / path).exists() for path in allowed)
    assert not {".git", ".venv", "data", "runs", "tests"} & {p.split("/")[0] for p in allowed}
    copied = {a.split()[0].rstrip("/") for a in stages()[-1].args("COPY") if not a.startswith("--from")}
    copied |= set(stages()[0].args("COPY")[0].split()[:-1])
    assert copied <= set(allowed)


def test_locked_requirements_satisfy_pyproject() -> None:
    import tomllib

    pins = {}
    for line in (ROOT / "deploy" / "requirements.txt").read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==([^\s\\]+)", line):
            pins[match[1].lower().replace("_", "-")] = match[2]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        name = requirement.name.lower().replace("_", "-")
        assert name in pins, f"{name} is not pinned in deploy/requirements.txt (run make lock)"
        assert requirement.specifier.contains(pins[name]), f"{name}=={pins[name]} violates {spec}"
    assert "torch" not in pins and "onnx" not in pins


def test_dashboard_charts_the_service_metrics() -> None:
    grafana = ROOT / "deploy" / "grafana"
    dashboard = json.loads((grafana / "dashboards" / "vae-service.json").read_text())
    source = yaml.safe_load((grafana / "provisioning" / "datasources" / "prometheus.yml").read_text())
    uid = source["datasources"][0]["uid"]
    exported = {
        m._name + suffix  # type: ignore[attr-defined]
        for m in (
            metrics.REQUESTS,
            metrics.REQUEST_LATENCY,
            metrics.INFERENCE_LATENCY,
            metrics.IMAGES,
            metrics.IN_FLIGHT,
            metrics.MODEL_INFO,
        )
        for suffix in ("", "_total", "_bucket", "_count", "_sum")
    }
    titles = set()
    for panel in dashboard["panels"]:
        titles.add(panel["title"])
        assert panel["datasource"]["uid"] == uid
        for target in panel["targets"]:
            assert set(re.findall(r"\bvae_[a-z_]+", target["expr"])) <= exported, target["expr"]
    assert {
        "Request rate",
        "Error rate",
        "Latency percentiles",
        "Images per second",
        "Requests in flight",
    } <= titles
