"""The worker count: one per CPU the process may use unless a number is given."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import settings
from service.settings import Settings, usable_cpus


def test_workers_default_to_the_cpus_the_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAE_WORKERS", raising=False)
    assert Settings().workers == Settings(workers="auto").workers == usable_cpus() >= 1
    assert usable_cpus() <= len(os.sched_getaffinity(0))
    assert Settings(workers=3).workers == 3


def test_a_cgroup_cpu_quota_bounds_the_workers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    monkeypatch.setattr(settings, "CGROUP_CPU", cpu_max)
    affinity = len(os.sched_getaffinity(0))
    cpu_max.write_text("150000 100000\n")  # --cpus=1.5: two workers, rounded up
    assert usable_cpus() == min(affinity, 2)
    cpu_max.write_text("50000 100000\n")  # half a CPU: still one worker
    assert usable_cpus() == 1
    cpu_max.write_text("max 100000\n")  # no quota
    assert usable_cpus() == affinity
    cpu_max.unlink()  # no cgroup v2
    assert usable_cpus() == affinity
