"""The Kubernetes manifests, validated offline against Kubernetes' own schemas (kubernetes-validate)
and against what the image and the service actually do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from harness import ROOT
from tests.deploy.dockerfile import stages

K8S = ROOT / "deploy" / "k8s"
MANIFESTS = {
    doc["kind"]: doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())
}


def test_every_manifest_passes_kubernetes_schemas_strictly() -> None:
    core = [str(p) for p in sorted(K8S.glob("*.yaml")) if "servicemonitor" not in p.name]  # a CRD
    validate = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run([str(validate), "--strict", *core], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert set(MANIFESTS) == {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "ServiceMonitor",
        "Ingress",
    }


def test_the_deployment_matches_the_image_and_the_service() -> None:
    pod = MANIFESTS["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    user = stages()[-1].args("USER")[-1].split(":")[0]  # the Dockerfile's own user
    assert pod["securityContext"]["runAsNonRoot"] and str(pod["securityContext"]["runAsUser"]) == user
    assert container["securityContext"]["readOnlyRootFilesystem"]
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]  # metric files: writable
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert pod["terminationGracePeriodSeconds"] > int(env["VAE_SHUTDOWN_GRACE_SECONDS"]) + 5  # + preStop
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8000, "metrics": int(env["VAE_METRICS_PORT"])}


def test_the_pieces_point_at_each_other() -> None:
    labels = MANIFESTS["Deployment"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"):
        spec = MANIFESTS[kind]["spec"]
        selector = spec.get("selector") or spec.get("podSelector")
        wanted = selector.get("matchLabels", selector)
        assert wanted.items() <= labels.items() or kind == "ServiceMonitor", kind
    service_ports = {p["name"] for p in MANIFESTS["Service"]["spec"]["ports"]}
    assert {e["port"] for e in MANIFESTS["ServiceMonitor"]["spec"]["endpoints"]} <= service_ports
    assert MANIFESTS["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]["name"] == "vae-service"
    ingress_rules = MANIFESTS["NetworkPolicy"]["spec"]["ingress"]
    assert [rule["ports"][0]["port"] for rule in ingress_rules] == [8000, 9100]  # API and metrics only
