"""`make bench` in miniature: the same code path, a second per point, so the suite cannot rot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness import ROOT

pytestmark = pytest.mark.server  # starts real processes


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: `make system-deps` installs it")
def test_the_benchmark_runs_end_to_end_and_reports_every_table(tmp_path: Path) -> None:
    out = tmp_path / "results.md"
    command = [sys.executable, "-m", "benchmarks", "--seconds", "1", "--warmup", "0"]
    command += [
        "--ceiling-seconds",
        "0.2",
        "--only",
        "16 latents",
        "--connections",
        "4",
        "--workers",
        "1",
        "2",
    ]
    subprocess.run([*command, "--out", str(out), "--logs", str(tmp_path)], cwd=ROOT, check=True, timeout=240)
    text = out.read_text()
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
    out = tmp_path / "peers.md"
    command = [sys.executable, "-m", "benchmarks.peers", "--seconds", "1", "--rounds", "1"]
    command += ["--connections", "4", "--out", str(out), "--logs", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=240)
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| /decode")]
    assert len(rows) == 2  # 1 and 16 latents
    for cells in rows:
        assert all(float(cells[i].replace(",", "")) > 0 for i in (3, 4, 5, 6))  # requests/s of each server
        assert cells[7].strip().endswith("x") and cells[8].strip().endswith("x")  # over the naive app


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is missing: `make system-deps` installs it")
def test_the_profile_tables_a_workload_by_function_and_by_package(tmp_path: Path) -> None:
    out = tmp_path / "profile.md"
    command = [sys.executable, "-m", "benchmarks.profile", "--seconds", "1", "--top", "5"]
    command += ["--workloads", "/decode, 1 latent", "--out", str(out), "--logs", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=240)
    text = out.read_text()
    assert "| function | calls |" in text and "| whose code |" in text
    assert "service" in text and "uvicorn" in text  # the request path's own code is in the profile
