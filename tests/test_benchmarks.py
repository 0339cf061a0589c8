"""`make bench` in miniature: the same code path, a second per point, so the suite cannot rot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT

pytestmark = pytest.mark.server  # starts real processes


def _report(module: str, tmp_path: Path, *options: str) -> str:
    """Run a benchmark command in miniature; the markdown it writes."""
    out = tmp_path / "report.md"
    command = [sys.executable, "-m", module, *options, "--out", str(out), "--logs", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=240)
    return out.read_text()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: `make system-deps` installs it")
def test_the_benchmark_runs_end_to_end_and_reports_every_table(tmp_path: Path) -> None:
    options = ["--seconds", "1", "--warmup", "0", "--ceiling-seconds", "0.2", "--only", "16 latents"]
    text = _report("benchmarks", tmp_path, *options, "--connections", "4", "--workers", "1", "2")
    headings = ("the ceiling", "The service over HTTP", "Dynamic batching", "binary tensors over JSON")
    for heading in (*headings, "Workers", "memory", "PNG"):
        assert heading in text
    rows = [line for line in text.splitlines() if line.startswith(("| /decode, 16 latents", "| V2 infer"))]
    http = [r.split("|") for r in rows if r.count("|") == 10]
    assert len(http) == 8  # JSON and .npy, V2 JSON and binary; batching on and off
    for cells in http:
        assert float(cells[4].replace(",", "")) > 0  # requests/s
        assert int(cells[8]) == 0  # no request failed
    (binary,) = [line.split("|") for line in text.splitlines() if line.startswith("| 16 latents | 4 |")]
    assert binary[5].strip().endswith("x")  # binary tensors over JSON, 16 latents at 4 connections
    workers = [line for line in text.splitlines() if line.count("|") == 9 and "| 2 |" in line]
    assert len(workers) == 4  # every workload measured with two workers too


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: `make system-deps` installs it")
def test_the_peer_comparison_checks_both_answers_and_reports_the_ratio(tmp_path: Path) -> None:
    text = _report("benchmarks.peers", tmp_path, "--seconds", "1", "--rounds", "1", "--connections", "4")
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| /decode")]
    assert len(rows) == 2  # 1 and 16 latents
    for cells in rows:
        assert all(float(cells[i].replace(",", "")) > 0 for i in (3, 4, 5, 6))  # requests/s of each server
        assert cells[7].strip().endswith("x") and cells[8].strip().endswith("x")  # over the naive app


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: `make system-deps` installs it")
def test_the_profile_tables_a_workload_by_function_and_by_package(tmp_path: Path) -> None:
    options = ["--seconds", "1", "--top", "5", "--workloads", "/decode, 1 latent"]
    text = _report("benchmarks.profile", tmp_path, *options)
    assert "| function | calls |" in text and "| whose code |" in text
    assert "service" in text and "uvicorn" in text  # the request path's own code is in the profile
