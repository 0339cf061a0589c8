"""The benchmark's figures as markdown tables, and how they compare with the service's targets."""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field

from benchmarks.ceiling import BATCHES
from benchmarks.load import Point
from benchmarks.workloads import Workload


@dataclass
class Report:
    machine: str
    model: str
    seconds: int
    ceiling: dict[tuple[str, int], dict[int, float]] = field(default_factory=dict)  # (network, threads)
    png: dict[int, tuple[float, float]] = field(default_factory=dict)  # level -> (us, bytes) per image
    points: dict[tuple[str, int, str], Point] = field(default_factory=dict)  # (workload, conns, batching)
    workloads: dict[str, Workload] = field(default_factory=dict)
    workers: dict[tuple[str, int, int], Point] = field(default_factory=dict)  # (workload, workers, conns)
    memory: dict[tuple[int, str], tuple[float, float]] = field(default_factory=dict)  # -> (ready s, MiB)

    def add(self, workload: Workload, connections: int, batching: str, point: Point) -> None:
        self.workloads[workload.name] = workload
        self.points[(workload.name, connections, batching)] = point

    def add_workers(self, workload: Workload, workers: int, connections: int, point: Point) -> None:
        self.workers[(workload.name, workers, connections)] = point

    def best(self, network: str, threads: int = 1) -> float:
        return max(self.ceiling[(network, threads)].values())

    def ceiling_table(self) -> str:
        rows = [
            f"| {network} | {threads} | " + " | ".join(f"{by_batch[b]:,.0f}" for b in BATCHES) + " |"
            for (network, threads), by_batch in sorted(self.ceiling.items())
        ]
        head = "| Network | Threads | " + " | ".join(f"batch {b}" for b in BATCHES) + " |"
        return "\n".join([head, "|---|---:|" + "---:|" * len(BATCHES), *rows])

    def png_table(self) -> str:
        rows = [f"| {level} | {us:.1f} | {size:.0f} |" for level, (us, size) in sorted(self.png.items())]
        return "\n".join(["| PNG level | us per image | bytes per image |", "|---:|---:|---:|", *rows])

    def http_table(self) -> str:
        rows = []
        for (name, connections, batching), p in self.points.items():
            share = p.images_per_s / self.best(self.workloads[name].network)
            rows.append(
                f"| {name} | {connections} | {batching} | {p.requests_per_s:,.0f} | {p.images_per_s:,.0f} "
                f"| {p.p50_ms:.2f} | {p.p99_ms:.2f} | {p.failed} | {share:.1%} |"
            )
        head = (
            "| Workload | Connections | Batching | Requests/s | Images/s | p50 ms | p99 ms | Failed "
            "| Of ceiling |"
        )
        return "\n".join([head, "|---|---:|---|---:|---:|---:|---:|---:|---:|", *sorted(rows)])

    def batching_table(self) -> str:
        rows = []
        for (name, connections, batching), on in sorted(self.points.items()):
            off = self.points.get((name, connections, "off"))
            if batching == "on" and off is not None:
                rows.append(f"| {name} | {connections} | {on.requests_per_s / off.requests_per_s:.2f}x |")
        return "\n".join(["| Workload | Connections | Batching on / off |", "|---|---:|---:|", *rows])

    def binary_table(self) -> str:
        """The Open Inference Protocol's binary tensors against JSON, size by size (batching on)."""
        rows = []
        for (name, connections, batching), binary in sorted(self.points.items()):
            if batching != "on" or not name.startswith("V2") or not name.endswith(", binary"):
                continue
            as_json = self.points.get((name.removesuffix("binary") + "JSON", connections, "on"))
            if as_json is not None:
                size = name.removeprefix("V2 infer, ").removesuffix(", binary")
                json_rate, binary_rate = as_json.requests_per_s, binary.requests_per_s
                rows.append(
                    f"| {size} | {connections} | {json_rate:,.0f} | {binary_rate:,.0f} "
                    f"| {binary_rate / json_rate:.2f}x |"
                )
        head = "| Latents | Connections | JSON requests/s | Binary requests/s | Binary / JSON |"
        return "\n".join([head, "|---|---:|---:|---:|---:|", *rows])

    def workers_table(self) -> str:
        rows = []
        for (name, workers, connections), p in sorted(self.workers.items()):
            one = self.points.get((name, connections, "on"))
            ratio = f"{p.requests_per_s / one.requests_per_s:.2f}x" if one else "-"
            rows.append(
                f"| {name} | {connections} | {workers} | {p.requests_per_s:,.0f} | {p.images_per_s:,.0f} "
                f"| {p.p50_ms:.2f} | {p.p99_ms:.2f} | {ratio} |"
            )
        head = "| Workload | Connections | Workers | Requests/s | Images/s | p50 ms | p99 ms | vs 1 worker |"
        return "\n".join([head, "|---|---:|---:|---:|---:|---:|---:|---:|", *rows])

    def memory_table(self) -> str:
        rows = [
            f"| {workers} | {batching} | {ready:.2f} | {rss:.0f} |"
            for (workers, batching), (ready, rss) in sorted(self.memory.items())
        ]
        head = "| Workers | Batching | Ready after start, s | RSS per worker after the load, MiB |"
        return "\n".join([head, "|---:|---|---:|---:|", *rows])

    def markdown(self) -> str:
        sections = [
            f"Measured by `make bench` on {datetime.date.today()}: {self.machine}. Model {self.model}; "
            f"each HTTP point is wrk for {self.seconds} s against one service process on 127.0.0.1 "
            "with default settings (batching off: `VAE_MAX_BATCH_SIZE=1`), wrk on the same machine.",
            "### onnxruntime alone, in-process (images/s): the ceiling",
            self.ceiling_table(),
            "### The service over HTTP",
            self.http_table(),
            "Of ceiling: images/s over the best of onnxruntime alone with the service's one thread.",
            "### Dynamic batching, requests/s with it over without",
            self.batching_table(),
        ]
        if any(name.startswith("V2") for name in self.workloads):
            sections += ["### Open Inference Protocol: binary tensors over JSON", self.binary_table()]
        if self.workers:
            sections += ["### Workers, at the most connections", self.workers_table()]
        sections += ["### Start-up and memory", self.memory_table(), "### PNG output", self.png_table()]
        return "\n\n".join(sections) + "\n"
