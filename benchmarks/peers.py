"""``python -m benchmarks.peers`` (``make bench-peers``, ``make bench-pytriton``): the service
against a peer, side by side in one run.

- ``--peer naive`` (the default): the naive FastAPI app (benchmarks/naive.py) on /decode. Every
  server runs as one process on 127.0.0.1 with one onnxruntime thread and its default settings (the
  service with one worker and its access log on, written to a file; the naive app under uvicorn's
  defaults, its access log on too), plus the service with its access log off, to show what the log
  costs, and the service as `make serve` starts it (one worker per CPU).
- ``--peer pytriton --pytriton PYTHON``: PyTriton (benchmarks/pytriton_peer.py, run by PYTHON, an
  interpreter with nvidia-pytriton) on Open Inference Protocol inference of the decoder, tensors in
  JSON and binary, against the service as `make serve` starts it.

Each server's answer is checked against onnxruntime before it is timed. The servers are measured in
turn, the order reversed every round, for ``--rounds`` rounds; the report gives the median
requests/s of each and the ratios. Writes benchmarks/peers.md (or --out).
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import httpx2 as httpx
import numpy as np
import onnxruntime as ort
from PIL import Image

from benchmarks import cli
from benchmarks.cli import ROOT, single_model
from benchmarks.load import run_wrk, wrk_available
from benchmarks.workloads import JSON, Workload, _json, v2_workloads
from harness.ports import free_port
from harness.processes import answers, running, service
from service.settings import usable_cpus


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
def pytriton(python: str, decoder: Path, name: str, logs: Path) -> Iterator[str]:
    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    command = [python, str(ROOT / "benchmarks" / "pytriton_peer.py"), str(decoder), name, str(port)]
    command += ["--grpc-port", str(grpc_port)]
    ready = answers(f"{url}/v2/models/{name}-decoder/ready")
    with running(command, logs / f"pytriton-{port}.log", ready, cwd=ROOT):
        yield url


@contextmanager
def served(models: Path, logs: Path, **settings: str) -> Iterator[str]:
    port = free_port()
    with service(models, logs, port, **settings):
        yield f"http://127.0.0.1:{port}"


def _png(answer: httpx.Response) -> np.ndarray:
    """/decode's first image as grey levels."""
    image = Image.open(io.BytesIO(base64.b64decode(answer.json()["images"][0])))
    return np.asarray(image, dtype=np.float32) / 255


def _x_mean(answer: httpx.Response) -> np.ndarray:
    """The x_mean tensor of an Open Inference Protocol answer, in JSON or binary."""
    length = answer.headers.get("inference-header-content-length")
    if length is None:
        (output,) = answer.json()["outputs"]
        return np.asarray(output["data"], np.float32).reshape(output["shape"])
    (output,) = json.loads(answer.content[: int(length)])["outputs"]
    return np.frombuffer(answer.content[int(length) :], "<f4").reshape(output["shape"])


def check(url: str, workload: Workload, expected: np.ndarray) -> None:
    """The server's answer is the decoder's x_mean: within PNG's rounding for /decode's images, to
    float precision for the protocol's tensors."""
    headers = {"content-type": workload.content_type, "accept": workload.accept, **dict(workload.headers)}
    answer = httpx.post(url + workload.path, content=workload.body, headers=headers, timeout=30)
    answer.raise_for_status()
    if workload.path == "/decode":
        got, want, tolerance = _png(answer), expected[0, 0], 1 / 255 + 1e-6
    else:
        got, want, tolerance = _x_mean(answer), expected, 1e-5
    difference = float(np.abs(got - want).max())
    if got.shape != want.shape or difference > tolerance:
        raise SystemExit(f"{url} answers {workload.name} {difference:.2g} from onnxruntime's x_mean")


def inputs(workload: Workload, latent_dim: int) -> np.ndarray:
    """The latents a workload sends."""
    if workload.path == "/decode":
        return np.asarray(json.loads(workload.body)["z"], np.float32)
    length = dict(workload.headers).get("Inference-Header-Content-Length")
    if length is None:
        data = json.loads(workload.body)["inputs"][0]["data"]
        return np.asarray(data, np.float32).reshape(-1, latent_dim)
    return np.frombuffer(workload.body[int(length) :], "<f4").reshape(-1, latent_dim)


def measure(
    servers: dict[str, str], cases: list[Workload], connections: list[int], rounds: int, seconds: int
) -> dict[tuple[str, str, int], float]:
    """Median requests/s of every (server, workload, connections), in interleaved rounds."""
    rates: dict[tuple[str, str, int], list[float]] = {}
    for round_ in range(rounds):
        order = list(servers.items()) if round_ % 2 == 0 else list(reversed(servers.items()))
        for workload in cases:
            for n in connections:
                for label, url in order:
                    point = run_wrk(url, workload, n, seconds)
                    if point.failed:
                        raise SystemExit(f"{label}: {point.failed} requests failed on {workload.name}")
                    rates.setdefault((label, workload.name, n), []).append(point.requests_per_s)
                    print(f"round {round_ + 1} {label} {workload.name} c={n}: "
                          f"{point.requests_per_s:.0f} req/s", flush=True)  # fmt: skip
    return {key: statistics.median(values) for key, values in rates.items()}


def main() -> None:
    p = cli.parser("python -m benchmarks.peers", __doc__, seconds=5, out="peers.md")
    p.add_argument("--rounds", type=int, default=3, help="turns of every point for each server")
    p.add_argument("--peer", choices=["naive", "pytriton"], default="naive")
    p.add_argument("--pytriton", metavar="PYTHON", help="an interpreter with nvidia-pytriton installed")
    args = cli.parse(p, wrk_available())
    if args.peer == "pytriton" and not args.pytriton:
        p.error("--peer pytriton needs --pytriton PYTHON (`make bench-pytriton` makes one)")
    folder = args.models / args.model
    repository = single_model(args.models, args.model, args.logs)  # requests name no version
    name = args.model.split("/")[0]
    decoder = ort.InferenceSession(str(folder / "decoder.onnx"), providers=["CPUExecutionProvider"])
    latent_dim = decoder.get_inputs()[0].shape[1]
    with ExitStack() as stack:
        start: dict[str, Callable[[], AbstractContextManager[str]]] = {
            "vae-service": lambda: served(repository, args.logs, default_model=name)
        }
        if args.peer == "naive":
            cases = decode_workloads(latent_dim)
            start["vae-service, access log off"] = lambda: served(
                repository, args.logs, default_model=name, access_log="false"
            )
            start["vae-service, default workers"] = lambda: served(
                repository, args.logs, default_model=name, workers="auto"
            )
            start["naive FastAPI"] = lambda: naive(folder, args.logs)
        else:
            cases = v2_workloads(name, latent_dim, sizes=(1, 16))
            start["PyTriton"] = lambda: pytriton(args.pytriton, folder / "decoder.onnx", name, args.logs)
        servers = {label: stack.enter_context(begin()) for label, begin in start.items()}
        for workload in cases:
            expected = decoder.run(["x_mean"], {"z": inputs(workload, latent_dim)})[0]
            for url in servers.values():
                check(url, workload, expected)
        rates = measure(servers, cases, args.connections, args.rounds, args.seconds)
    intro = (
        f"`make bench-{'peers' if args.peer == 'naive' else 'pytriton'}` (`python -m benchmarks.peers "
        f"--peer {args.peer}`): {args.model}, the servers up side by side, {args.rounds} interleaved "
        f"rounds of {args.seconds} s per point, medians of requests/s ({platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores)."
    )
    table = (
        _naive_table(rates, cases, args.connections)
        if args.peer == "naive"
        else _pytriton_table(rates, cases, args.connections)
    )
    text = "\n".join([intro, "", *table])
    args.out.write_text(text + "\n")
    print(text)


def _naive_table(rates: dict, cases: list[Workload], connections: list[int]) -> list[str]:
    labels = ("vae-service", "vae-service, access log off", "vae-service, default workers", "naive FastAPI")
    lines = [
        f"vae-service: one worker, as the naive app runs, access log on; log off: the same without it; "
        f"default: `make serve` as it starts here, {usable_cpus()} workers (one per CPU).",
        "",
        "| workload | connections | vae-service | log off | default | naive FastAPI | service / naive "
        "| default / naive | log cost |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload in cases:
        for n in connections:
            on, off, default, plain = (rates[(label, workload.name, n)] for label in labels)
            lines.append(
                f"| {workload.name} | {n} | {on:,.0f} | {off:,.0f} | {default:,.0f} | {plain:,.0f} | "
                f"{on / plain:.2f}x | {default / plain:.2f}x | {1 - on / off:+.0%} |"
            )
    return lines


def _pytriton_table(rates: dict, cases: list[Workload], connections: list[int]) -> list[str]:
    lines = [
        "| workload | connections | vae-service | PyTriton | service / PyTriton |",
        "|---|---:|---:|---:|---:|",
    ]
    for workload in cases:
        for n in connections:
            ours, theirs = (rates[(label, workload.name, n)] for label in ("vae-service", "PyTriton"))
            lines.append(f"| {workload.name} | {n} | {ours:,.0f} | {theirs:,.0f} | {ours / theirs:.2f}x |")
    return lines


if __name__ == "__main__":
    main()
