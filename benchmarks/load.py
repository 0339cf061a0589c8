"""The service over HTTP under wrk: one run per point, its summary parsed from wrk.lua's JSON line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.workloads import Workload

SCRIPT = Path(__file__).with_name("wrk.lua")


@dataclass(frozen=True)
class Point:
    requests_per_s: float
    images_per_s: float
    p50_ms: float
    p99_ms: float
    failed: int  # non-2xx answers and socket errors


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(url: str, workload: Workload, connections: int, seconds: int, warmup: int = 1) -> Point:
    """``warmup`` seconds of the same load first, unmeasured: the first requests of a connection pay
    for buffers and code paths that every later one finds ready."""
    if warmup:
        _wrk(url, workload, connections, warmup)
    summary = _wrk(url, workload, connections, seconds)
    rate = summary["requests"] / (summary["duration_us"] / 1e6)
    return Point(
        requests_per_s=rate,
        images_per_s=rate * workload.images,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        failed=summary["non_2xx"] + summary["socket_errors"],
    )


def _wrk(url: str, workload: Workload, connections: int, seconds: int) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".body") as body:
        body.write(workload.body)
        body.flush()
        env = os.environ | {
            "BENCH_BODY": body.name,
            "BENCH_CONTENT_TYPE": workload.content_type,
            "BENCH_ACCEPT": workload.accept,
            "BENCH_HEADERS": "\n".join(f"{name}: {value}" for name, value in workload.headers),
        }
        threads = min(connections, 2)
        command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s"]
        done = subprocess.run(
            [*command, "-s", str(SCRIPT), url + workload.path],
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    return json.loads(done.stdout.strip().splitlines()[-1])
