"""``python -m service``: serve the model repository with uvicorn, configured by VAE_* variables.

With several workers, Prometheus metrics need a shared folder (``PROMETHEUS_MULTIPROC_DIR``) that
exists and is empty before the workers start; a fresh one is made when none is given. One worker
keeps its metrics in memory instead: each update of a shared file costs microseconds that a
request pays about ten times (6% of a /decode request's time, py-spy).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import uvicorn

from service.settings import get_settings


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


def main() -> None:
    settings = get_settings()
    prepare_metrics_dir(settings.workers)
    uvicorn.run(
        "service.main:app",
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds,
        proxy_headers=True,  # client addresses from the gateway's X-Forwarded-For, for trusted proxies only
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


if __name__ == "__main__":
    main()
