"""Containers built and run here with podman, where no image registry is reachable.

- ``engine_env``: podman's configuration for these machines (runc, cgroupfs, netavark; ulimits no
  higher than the hard limits of this machine, read at run time), in a containers.conf of its own.
- ``standin``: an image built from Debian's packages with mmdebstrap, from the mirror this machine's
  apt already uses (read at run time): the base Python, nginx and Prometheus stand in for the images
  the Dockerfile and docker-compose.yml name.
- ``build_service_image``: the repository's own Dockerfile, on the stand-in base, given the host's
  CA bundle as a build secret (pip's TLS may be intercepted here; nothing of it stays in the image).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from harness import ROOT

NPROC = 4096  # the container's process limit: runc may not raise it to this machine's hard limit
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


def engine_env(folder: Path) -> dict[str, str]:
    """The environment for podman and podman-compose, with a containers.conf for this machine."""
    folder.mkdir(parents=True, exist_ok=True)
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = min(NPROC, resource.getrlimit(resource.RLIMIT_NPROC)[1])
    conf = folder / "containers.conf"
    conf.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"  # crun refuses these machines\' hybrid cgroup layout\n'
        'cgroup_manager = "cgroupfs"  # no systemd\n'
        'events_logger = "file"\n'
        "[network]\n"
        'network_backend = "netavark"  # with aardvark-dns: containers find each other by name\n'
    )
    return dict(os.environ) | {"CONTAINERS_CONF": str(conf)}


def podman(*args: str, env: dict[str, str], timeout: float = 600, check: bool = True) -> str:
    done = subprocess.run(["podman", *args], env=env, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args[:3])}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip()


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses (never written into the repository)."""
    for path in SOURCES:
        if path.exists():
            found = re.search(
                r"^(?:URIs:\s*|deb\s+(?:\[[^\]]*\]\s*)?)(\S+/debian)/?\s", path.read_text(), re.M
            )
            if found:
                return found.group(1)
    raise RuntimeError("no Debian mirror found in apt's sources")


@dataclass(frozen=True)
class Standin:
    tag: str
    packages: tuple[str, ...]
    changes: tuple[str, ...] = ()  # Dockerfile instructions for podman import: ENTRYPOINT, CMD, ...
    hooks: tuple[str, ...] = ()  # mmdebstrap customize hooks ("$1" is the new root)


SLIM = ('rm -rf "$1"/var/lib/apt/lists/* "$1"/usr/share/doc/* "$1"/usr/share/man/*',)
PYTHON = Standin(
    "localhost/vae-standin/python:3.11-bookworm", ("python3", "python3-venv", "passwd"), hooks=SLIM
)
NGINX = Standin(
    "localhost/vae-standin/nginx:bookworm",
    ("nginx-light", "curl"),
    changes=('CMD ["nginx", "-g", "daemon off;"]',),
    hooks=(*SLIM, 'rm -f "$1"/etc/nginx/sites-enabled/default'),
)
PROMETHEUS = Standin(
    "localhost/vae-standin/prometheus:bookworm",
    ("prometheus",),
    changes=('ENTRYPOINT ["/usr/bin/prometheus"]', "WORKDIR /prometheus"),
    hooks=(*SLIM, 'mkdir -p "$1"/prometheus'),
)


def standin(image: Standin, env: dict[str, str]) -> float:
    """Build ``image`` unless it exists; returns the seconds it took (0 when it existed)."""
    if subprocess.run(["podman", "image", "exists", image.tag], env=env).returncode == 0:
        return 0.0
    start = time.perf_counter()
    build = ["mmdebstrap", "--variant=minbase", "--quiet", f"--include={','.join(image.packages)}"]
    build += [f"--customize-hook={hook}" for hook in image.hooks]
    build += ["bookworm", "-", debian_mirror()]
    imported = ["podman", "import", *[f"--change={c}" for c in image.changes], "-", image.tag]
    with subprocess.Popen(build, stdout=subprocess.PIPE) as rootfs:
        subprocess.run(imported, stdin=rootfs.stdout, env=env, check=True, capture_output=True, timeout=600)
    if rootfs.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed for {image.tag}")
    return time.perf_counter() - start


def build_service_image(tag: str, env: dict[str, str], base: str = PYTHON.tag) -> float:
    """The repository's Dockerfile built on ``base``; returns the seconds the build took."""
    start = time.perf_counter()
    # the build's RUN steps use the host's network: pip reaches the package index as the host does
    # (a bridged build container's DNS is not answered on every machine here)
    command = ["build", "--format", "docker", "--network", "host", "--build-arg", f"PYTHON_IMAGE={base}"]
    command += ["-t", tag]
    if CA_BUNDLE.exists():
        command += ["--secret", f"id=pip-ca,src={CA_BUNDLE}"]
    podman(*command, str(ROOT), env=env, timeout=900)
    return time.perf_counter() - start
