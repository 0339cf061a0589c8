"""The soak: mixed traffic on every endpoint, valid and invalid, at 32 connections for minutes, with
the server's memory and file descriptors watched.

Every request of the mix has the one status it must get; anything else (or a transport error) is
unexpected. Memory is sampled every second: its growth is the median of the last samples against
the median of the samples just after warm-up (a fifth of the run). File descriptors are counted
before the load and after it, once its connections are closed. ``make soak`` runs it for 10 minutes
and writes reliability/soak.md; tests/reliability/test_soak.py runs it for 60 s.
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image

from harness.probe import Usage, usage
from reliability.load import Request, Result, drive

ROOT = Path(__file__).resolve().parents[1]
MiB = 1 << 20
NPY = "application/x-npy"


def _png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _npy(z: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, z)
    return buf.getvalue()


def mix(latent_dim: int) -> list[tuple[str, Request, int]]:
    """(name, request, the status it must get): every endpoint, and the usual mistakes."""
    z = np.random.default_rng(0).standard_normal((4, latent_dim)).astype(np.float32)
    pngs = [_png(i) for i in range(4)]
    b64 = [base64.b64encode(p).decode() for p in pngs]
    files = [("files", (f"{i}.png", p, "image/png")) for i, p in enumerate(pngs)]
    ends = {"start": {"z": z[0].tolist()}, "end": {"z": z[1].tolist()}, "steps": 8}
    json_post = {"headers": {"content-type": "application/json"}}
    return [
        ("decode 4, JSON", ("POST", "/decode", {"json": {"z": z.tolist()}}), 200),
        (
            "decode 4, .npy in and out",
            ("POST", "/decode", {"content": _npy(z), "headers": {"content-type": NPY, "accept": NPY}}),
            200,
        ),
        ("sample 16", ("POST", "/sample", {"json": {"n": 16}}), 200),
        (
            "sample 16, one PNG grid",
            ("POST", "/sample", {"json": {"n": 16}, "headers": {"accept": "image/png"}}),
            200,
        ),
        ("interpolate latents", ("POST", "/interpolate", {"json": ends | {"method": "slerp"}}), 200),
        (
            "interpolate images",
            ("POST", "/interpolate", {"json": {"start": {"image": b64[0]}, "end": {"image": b64[1]}}}),
            200,
        ),
        ("encode 4 PNG, multipart", ("POST", "/encode", {"files": files, "data": {"sample": "true"}}), 200),
        ("encode 4 PNG, JSON", ("POST", "/encode", {"json": {"images": b64}}), 200),
        ("models", ("GET", "/models", {}), 200),
        ("healthz", ("GET", "/healthz", {}), 200),
        ("readyz", ("GET", "/readyz", {}), 200),
        ("metrics", ("GET", "/metrics", {}), 200),
        ("NaN latent", ("POST", "/decode", {"content": b'{"z": [[NaN]]}', **json_post}), 422),
        ("latent of the wrong length", ("POST", "/decode", {"json": {"z": [[0.0] * (latent_dim + 1)]}}), 422),
        (
            "too many JSON bytes",
            ("POST", "/decode", {"content": b'{"z": [' + b" " * 2 * MiB + b"]}", **json_post}),
            413,
        ),
        (
            "corrupt PNG",
            ("POST", "/encode", {"files": [("files", ("x.png", pngs[0][:60], "image/png"))]}),
            400,
        ),
        ("n = 0", ("POST", "/sample", {"json": {"n": 0}}), 422),
        ("unknown model", ("POST", "/sample", {"json": {"model": "nope"}}), 404),
        (
            "XML body",
            ("POST", "/sample", {"content": b"<n/>", "headers": {"content-type": "application/xml"}}),
            415,
        ),
        ("unknown path", ("GET", "/nowhere", {}), 404),
    ]


@dataclass
class Watch:
    """Samples a process's usage every ``every`` seconds in a thread until stopped."""

    pid: int
    every: float = 1.0
    samples: list[tuple[float, Usage]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic() - start, usage(self.pid)))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Soak:
    seconds: float
    connections: int
    result: Result
    expected: dict[str, int]  # request name -> its status, in the mix's order
    by_name: Counter  # (name, status) -> count
    unexpected: Counter  # (name, status) -> count, for statuses other than the one expected
    rss_warm_mib: float
    rss_end_mib: float
    peak_mib: float
    fds_before: int
    fds_after: int

    @property
    def growth(self) -> float:
        return self.rss_end_mib / self.rss_warm_mib - 1


def soak(url: str, pid: int, latent_dim: int, seconds: float, connections: int = 32) -> Soak:
    requests = mix(latent_dim)
    with httpx.Client(base_url=url) as client:  # warm every path once, then close the connection
        for _, (method, path, kwargs), _ in requests:
            client.request(method, path, **kwargs)
    time.sleep(0.5)
    fds_before = usage(pid).fds
    with Watch(pid) as watch:
        result = drive(url, connections, seconds, lambda k: requests[k % len(requests)][1])
    time.sleep(1)  # the server closes its side of the load's connections
    fds_after = usage(pid).fds
    by_name: Counter = Counter()
    unexpected: Counter = Counter()
    for number, status in zip(result.sent, result.statuses, strict=True):
        name, _, expected = requests[number % len(requests)]
        by_name[(name, status)] += 1
        if status != expected:
            unexpected[(name, status)] += 1
    warm = [u.rss for t, u in watch.samples if seconds / 5 <= t < seconds / 5 + 5]
    end = [u.rss for _, u in watch.samples[-5:]]
    return Soak(
        seconds,
        connections,
        result,
        {name: status for name, _, status in requests},
        by_name,
        unexpected,
        statistics.median(warm) / MiB,
        statistics.median(end) / MiB,
        max(u.peak for _, u in watch.samples) / MiB,
        fds_before,
        fds_after,
    )


def report(s: Soak) -> str:
    total = len(s.result.statuses)
    lines = [
        f"{s.seconds:g} s at {s.connections} connections, one worker, "
        f"`python -m reliability.soak --seconds {s.seconds:g}`:",
        "",
        f"- requests: {total:,} ({total / s.seconds:,.0f}/s), unexpected answers: "
        f"{sum(s.unexpected.values())}" + (f" {dict(s.unexpected)}" if s.unexpected else ""),
        f"- RSS after warm-up {s.rss_warm_mib:.1f} MiB, at the end {s.rss_end_mib:.1f} MiB "
        f"(growth {s.growth:+.1%}); peak {s.peak_mib:.1f} MiB",
        f"- file descriptors before the load {s.fds_before}, after it {s.fds_after}",
        "",
        "| request | expected | answered |",
        "|---|---|---|",
    ]
    for name, expected in s.expected.items():
        answers = ", ".join(f"{n:,} x {st}" for (nm, st), n in sorted(s.by_name.items()) if nm == name)
        lines.append(f"| {name} | {expected} | {answers} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from harness.ports import free_port
    from harness.processes import service

    p = argparse.ArgumentParser(prog="python -m reliability.soak", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--out", type=Path, default=ROOT / "reliability" / "soak.md")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "reliability")
    args = p.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with service(args.models, args.logs, port, access_log="false") as server:
        latent_dim = httpx.get(f"{url}/models").json()["models"][0]["manifest"]["latent_dim"]
        result = soak(url, server.pid, latent_dim, args.seconds, args.connections)
    text = report(result)
    args.out.write_text(text)
    print(text)
    if result.unexpected or result.growth >= 0.10 or result.fds_after > result.fds_before:
        raise SystemExit("the soak failed: see above")


if __name__ == "__main__":
    main()
