"""``python -m benchmarks.peers`` (``make bench-peers``): the service against the naive FastAPI app
(benchmarks/naive.py) on /decode, side by side in one run.

Every server runs as one process on 127.0.0.1 with one onnxruntime thread and its default settings
(the service as `make serve` starts it: access log on, written to a file; the naive app under
uvicorn's defaults, its access log on too), plus the service with its access log off, to show what
the log costs. Each server's answer is checked against onnxruntime before it is timed. The servers
are measured in turn, the order reversed every round, for ``--rounds`` rounds; the report gives the
median requests/s of each and the ratios. Writes benchmarks/peers.md.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import statistics
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks import cli
from benchmarks.cli import ROOT, single_model
from benchmarks.load import run_wrk, wrk_available
from benchmarks.workloads import JSON, Workload, _json
from harness.ports import free_port
from harness.processes import answers, running, service


def decode_workloads(latent_dim: int) -> list[Workload]:
    z = np.random.default_rng(0).standard_normal((16, latent_dim)).astype(np.float32)
    return [
        Workload("/decode, 1 latent, JSON", "/decode", _json({"z": z[:1]}), JSON, JSON, 1, "decoder"),
        Workload("/decode, 16 latents, JSON", "/decode", _json({"z": z}), JSON, JSON, 16, "decoder"),
    ]


@contextmanager
def naive(model: Path, logs: Path) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "benchmarks.naive:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    env = os.environ | {"NAIVE_MODEL": str(model)}
    with running(command, logs / f"naive-{port}.log", answers(url + "/docs"), env=env, cwd=ROOT):
        yield url


@contextmanager
def served(models: Path, logs: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    with service(models, logs, port, **settings):
        yield f"http://127.0.0.1:{port}"


def check(url: str, workload: Workload, expected: np.ndarray) -> None:
    """The server's first image is the decoder's x_mean as 8-bit PNG (within rounding)."""
    answer = httpx.post(
        url + workload.path, content=workload.body, headers={"content-type": JSON}, timeout=30
    )
    answer.raise_for_status()
    got = np.asarray(Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0]))), dtype=np.int16)
    want = np.round(expected[0, 0] * 255).astype(np.int16)
    difference = int(np.abs(got - want).max())
    if difference > 1:
        raise SystemExit(f"{url} answers an image {difference} grey levels from onnxruntime's")


def main() -> None:
    p = cli.parser("python -m benchmarks.peers", __doc__, seconds=5, out="peers.md")
    p.add_argument("--rounds", type=int, default=3, help="turns of every point for each server")
    args = cli.parse(p, wrk_available())
    folder = args.models / args.model
    repository = single_model(args.models, args.model, args.logs)  # requests name no version
    name = args.model.split("/")[0]
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    latent_dim = decoder.get_inputs()[0].shape[1]
    cases = decode_workloads(latent_dim)
    with ExitStack() as stack:
        servers = {
            "vae-service": stack.enter_context(served(repository, args.logs, default_model=name)),
            "vae-service, access log off": stack.enter_context(
                served(repository, args.logs, default_model=name, access_log="false")
            ),
            "naive FastAPI": stack.enter_context(naive(folder, args.logs)),
        }
        for workload in cases:
            z = np.asarray(json.loads(workload.body)["z"], np.float32)
            expected = decoder.run(["x_mean"], {"z": z})[0]
            for url in servers.values():
                check(url, workload, expected)
        rates: dict[tuple[str, str, int], list[float]] = {}
        for round_ in range(args.rounds):
            order = list(servers.items()) if round_ % 2 == 0 else list(reversed(servers.items()))
            for workload in cases:
                for connections in args.connections:
                    for label, url in order:
                        point = run_wrk(url, workload, connections, args.seconds)
                        if point.failed:
                            raise SystemExit(f"{label}: {point.failed} requests failed on {workload.name}")
                        rates.setdefault((label, workload.name, connections), []).append(point.requests_per_s)
                        print(f"round {round_ + 1} {label} {workload.name} c={connections}: "
                              f"{point.requests_per_s:.0f} req/s", flush=True)  # fmt: skip
    lines = [
        f"`make bench-peers` (`python -m benchmarks.peers`): {args.model}, one process each, "
        f"{args.rounds} interleaved rounds of {args.seconds} s per point, medians of requests/s "
        f"({platform.machine()}, {len(os.sched_getaffinity(0))} cores).",
        "",
        "| workload | connections | vae-service | log off | naive FastAPI | service / naive | log cost |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in cases:
        for connections in args.connections:
            on, off, plain = (
                statistics.median(rates[(label, workload.name, connections)]) for label in servers
            )
            lines.append(
                f"| {workload.name} | {connections} | {on:,.0f} | {off:,.0f} | {plain:,.0f} | "
                f"{on / plain:.2f}x | {1 - on / off:+.0%} |"
            )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
