"""``python -m benchmarks`` (``make bench``): onnxruntime's ceiling, PNG costs, then the service
over HTTP under wrk for every workload at 1 and 32 connections (the native API and the Open
Inference Protocol, JSON and binary tensors), with dynamic batching on and off side by side, and
one and two workers. Writes a markdown report and prints it.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnxruntime as ort
import psutil

from benchmarks import cli
from benchmarks.ceiling import BATCHES, network_ceiling, png_costs
from benchmarks.load import Point, run_wrk, wrk_available
from benchmarks.report import Report
from benchmarks.workloads import v2_workloads, workloads
from harness.ports import free_port
from harness.processes import service  # the same real-process harness the end-to-end tests use

BATCHING = {"on": {}, "off": {"max_batch_size": "1"}}


@dataclass
class Served:
    url: str
    ready_s: float
    process: psutil.Process

    def rss_per_worker_mb(self) -> float:
        # several workers are spawned children of uvicorn's supervisor; one worker is the process itself
        children = self.process.children()
        workers = [p for p in children if "spawn_main" in " ".join(p.cmdline())] or [self.process]
        return max(p.memory_info().rss for p in workers) / 2**20


@contextmanager
def serving(models: Path, folder: Path, **settings: Any) -> Iterator[Served]:
    port = free_port()
    start = time.perf_counter()
    with service(models, folder, port, **settings) as process:
        yield Served(f"http://127.0.0.1:{port}", time.perf_counter() - start, psutil.Process(process.pid))


def main() -> None:
    options = cli.parser("python -m benchmarks", __doc__, seconds=10, out="results.md")
    options.add_argument("--ceiling-seconds", type=float, default=2, help="time per onnxruntime figure")
    options.add_argument("--only", default="", help="run only the workloads whose name contains this")
    options.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts to compare")
    options.add_argument("--warmup", type=int, default=1, help="unmeasured seconds of load before each point")
    args = cli.parse(options, wrk_available())
    folder = args.models / args.model
    manifest, z, digits = cli.model_and_digits(folder, rows=max(BATCHES))
    report = Report(machine=machine(), model=args.model, seconds=args.seconds)

    # (a) the ceiling: onnxruntime alone, in this process
    decoder, encoder = folder / manifest.files["decoder"].path, folder / manifest.files["encoder"].path
    for threads in (1, 2):
        report.ceiling[("decoder", threads)] = network_ceiling(decoder, z, threads, args.ceiling_seconds)
        report.ceiling[("encoder", threads)] = network_ceiling(encoder, digits, threads, args.ceiling_seconds)
    report.png = png_costs(digits[:64], levels=(0, 1, 6, 9), seconds=args.ceiling_seconds / 2)
    print(report.ceiling_table(), report.png_table(), sep="\n\n", flush=True)

    # (b) the service over HTTP: every configuration up at once, idle when not measured, taking
    # turns point by point so that a change in the machine's speed falls on all alike; more
    # workers at the most connections only (one connection keeps one worker busy at most)
    chosen = [
        w
        for w in workloads(manifest.latent_dim, digits) + v2_workloads(manifest.name, manifest.latent_dim)
        if args.only in w.name
    ]
    model_settings = {"default_model": manifest.name}
    with ExitStack() as stack:
        servers = {
            (batching, 1): stack.enter_context(serving(args.models, args.logs, **model_settings, **settings))
            for batching, settings in BATCHING.items()
        }
        for workers in (w for w in args.workers if w != 1):
            more = serving(args.models, args.logs, **model_settings, workers=str(workers))
            servers[("on", workers)] = stack.enter_context(more)
        for workload in chosen:
            for connections in args.connections:
                for (batching, workers), served in servers.items():
                    if workers != 1 and connections != max(args.connections):
                        continue
                    point = run_wrk(served.url, workload, connections, args.seconds, args.warmup)
                    if workers == 1:
                        report.add(workload, connections, batching, point)
                    else:
                        report.add_workers(workload, workers, connections, point)
                    print(
                        f"batching {batching:3} {workers} workers {connections:3} conn  "
                        f"{workload.name:30} {_line(point)}",
                        flush=True,
                    )
        for (batching, workers), served in servers.items():
            report.memory[(workers, batching)] = (served.ready_s, served.rss_per_worker_mb())

    text = report.markdown()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"\n{text}\nwritten to {args.out}")


def _line(point: Point) -> str:
    return (
        f"{point.requests_per_s:9.0f} req/s {point.images_per_s:9.0f} img/s "
        f"p50 {point.p50_ms:7.2f} ms p99 {point.p99_ms:7.2f} ms failed {point.failed}"
    )


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line
        ]
        cpu = names[0] if names else cpu
    return (
        f"{cpu}, {psutil.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB; "
        f"Python {platform.python_version()}, onnxruntime {ort.__version__}, {platform.system()}"
    )


if __name__ == "__main__":
    main()
