"""Ten seconds of the soak (`make soak` runs ten minutes): mixed valid and invalid traffic at 32
connections, no unexpected answer, memory flat after warm-up, no file descriptor leaked."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.ports import free_port
from harness.processes import service
from reliability.soak import report, soak

pytestmark = pytest.mark.server  # starts real processes


def test_mixed_traffic_leaves_memory_and_descriptors_flat(model_repository: Path, tmp_path: Path) -> None:
    port = free_port()
    with service(model_repository, tmp_path, port, default_model="digits", access_log="false") as server:
        result = soak(f"http://127.0.0.1:{port}", server.pid, latent_dim=4, seconds=10)
    summary = report(result)
    assert not result.unexpected and not result.result.errors, summary
    assert len(result.result.statuses) > 1000, summary
    assert result.growth < 0.10, summary
    assert result.fds_after <= result.fds_before, summary
