"""``python -m service``: serve the model repository with uvicorn, configured by VAE_* variables.

Signals: SIGTERM stops taking connections, lets the requests in flight finish for up to
``VAE_SHUTDOWN_GRACE_SECONDS`` and exits. SIGHUP reloads the model folder in place, in every worker
(uvicorn's own supervisor would replace the workers instead, dropping models that a broken new
file would have replaced).

With several workers, Prometheus metrics need a shared folder (``PROMETHEUS_MULTIPROC_DIR``) that
exists and is empty before the workers start; a fresh one is made when none is given. One worker
keeps its metrics in memory instead: each update of a shared file costs microseconds that a
request pays about ten times (6% of a /decode request's time, py-spy).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import uvicorn
from uvicorn.supervisors import Multiprocess

from service.protocol import ServerConfig
from service.settings import Settings, get_settings


def prepare_metrics_dir(workers: int) -> None:
    if workers == 1:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # before prometheus_client is imported
        return
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not folder:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="vae-metrics-")
        return
    Path(folder).mkdir(parents=True, exist_ok=True)
    for stale in Path(folder).glob("*.db"):  # values of an earlier run would be added to ours
        stale.unlink()


class Supervisor(Multiprocess):
    def handle_hup(self) -> None:
        for process in self.processes:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGHUP)


def serve_metrics(settings: Settings) -> None:
    """/metrics on their own port, from a thread of this (the supervising) process."""
    from prometheus_client import start_http_server  # after prepare_metrics_dir, as metrics need

    from service.metrics import registry

    assert settings.metrics_port is not None
    start_http_server(settings.metrics_port, addr=settings.host, registry=registry())


def main() -> None:
    settings = get_settings()
    prepare_metrics_dir(settings.workers)
    from service.middleware.auth import read_tokens  # after prepare_metrics_dir, as metrics need

    # a configuration no worker can start with stops here: uvicorn's supervisor would start workers
    # again and again for ever
    read_tokens(settings)
    config = ServerConfig(
        "service.main:app",
        max_head_bytes=settings.max_header_bytes,
        head_timeout=settings.head_timeout_seconds,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        server_header=False,  # which server and version this is helps no client, only a scanner
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        proxy_headers=True,  # client addresses from the gateway's X-Forwarded-For, for trusted proxies only
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    if settings.metrics_port is not None:
        serve_metrics(settings)
    if settings.workers == 1:
        uvicorn.Server(config).run()
    else:
        Supervisor(config, sockets=[config.bind_socket()]).run()


if __name__ == "__main__":
    main()
