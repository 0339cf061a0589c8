"""Overload: more requests than a worker can answer, with admission limits and without.

Each row is a real one-worker server offered heavy requests (/sample of 256 images as PNG) on many
connections at once, by clients that wait out Retry-After as well-behaved ones do. The server runs
on one core and the clients on the other. With a limit on the requests in flight (or on the model's
queue) the excess is refused at once with 503, and the requests admitted are answered in bounded
time; without one everything is admitted and everything waits for everything else.

Latency is given twice: as the clients saw it (which includes the Python clients' own delays in
reading 300 KB answers on a busy core) and as the server's histogram has it (the bucket bound that
holds the quantile). ``python -m reliability.overload`` writes reliability/overload.md.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

import httpx2 as httpx
import psutil
from prometheus_client.parser import text_string_to_metric_families

from harness.ports import free_port
from harness.processes import service
from reliability.load import Request, Result, drive

ROOT = Path(__file__).resolve().parents[1]
HEAVY: Request = ("POST", "/sample", {"json": {"n": 256, "seed": 1}})
UNLIMITED = 100_000


@dataclass
class Row:
    connections: int
    in_flight: int
    queue: int
    clients: Result  # as the clients saw it
    server: dict[float, float]  # seconds -> admitted requests answered within them (the histogram)

    def server_quantile_ms(self, q: float) -> float:
        """The bound of the histogram bucket that holds quantile ``q`` of the admitted requests."""
        total = self.server.get(float("inf"), 0)
        return next((le * 1000 for le, n in sorted(self.server.items()) if n >= q * total), float("nan"))


def latency_buckets(url: str, endpoint: str) -> dict[float, float]:
    families = text_string_to_metric_families(httpx.get(f"{url}/metrics", timeout=10).text)
    return {
        float(s.labels["le"]): s.value
        for f in families
        if f.name == "vae_request_duration_seconds"
        for s in f.samples
        if s.name.endswith("_bucket") and s.labels.get("endpoint") == endpoint
    }


def offer(models: Path, logs: Path, connections: int, in_flight: int, queue: int, seconds: float) -> Row:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cores = sorted(os.sched_getaffinity(0))
    limits = {"max_in_flight": str(in_flight), "max_queue": str(queue), "max_connections": str(UNLIMITED)}
    with service(models, logs, port, access_log="false", **limits) as server:
        psutil.Process(server.pid).cpu_affinity(cores[:1])
        os.sched_setaffinity(0, cores[1:] or cores)
        try:
            clients = drive(url, connections, seconds, lambda i: HEAVY)
        finally:
            os.sched_setaffinity(0, cores)
        return Row(connections, in_flight, queue, clients, latency_buckets(url, HEAVY[1]))


def _limit(value: int) -> str:
    return "none" if value >= UNLIMITED else str(value)


def table(rows: list[Row]) -> str:
    lines = [
        "| connections | in-flight limit | queue limit | answered 200/s | refused 503/s | other "
        "| p50 / p99 admitted, clients (ms) | p50 / p99 admitted, server (ms, at most) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        r = row.clients
        other = len(r.statuses) - r.count(200) - r.count(503)
        lines.append(
            f"| {row.connections} | {_limit(row.in_flight)} | {_limit(row.queue)} "
            f"| {r.count(200) / r.seconds:,.0f} | {r.count(503) / r.seconds:,.0f} | {other} "
            f"| {r.percentile_ms(50):,.0f} / {r.percentile_ms(99):,.0f} "
            f"| {row.server_quantile_ms(0.5):,.0f} / {row.server_quantile_ms(0.99):,.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m reliability.overload", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--connections", type=int, nargs="+", default=[64, 256])
    p.add_argument("--out", type=Path, default=ROOT / "reliability" / "overload.md")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "reliability")
    args = p.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    rows = []
    for connections in args.connections:
        for in_flight, queue in [(8, 1024), (32, 1024), (UNLIMITED, 4), (UNLIMITED, UNLIMITED)]:
            rows.append(offer(args.models, args.logs, connections, in_flight, queue, args.seconds))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    text = (
        f"/sample n=256 (PNG), {args.seconds:g} s per row; one worker on one core, the clients on the "
        "other, waiting out Retry-After; `python -m reliability.overload`.\n\n" + table(rows)
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
