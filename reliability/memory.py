"""Memory under many maximum-size bodies at once: N connections each send one body of the largest
size the service takes, of one kind at a time (base64 images in JSON, multipart uploads, a .npy
array, an Open Inference Protocol binary tensor), to one worker, whose peak resident memory is read
from /proc. Every connection must get an answer: its result, a 4xx, or 503 with Retry-After when
the body budget (VAE_MAX_BODY_MEMORY_BYTES) is spent.

``python -m reliability.memory`` (in ``make reliability``) runs 256 connections of 16 MiB bodies
against the shipped model and writes reliability/memory.md; tests/reliability/test_memory.py runs
the same, smaller.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from harness import ROOT
from harness.files import npy_bytes
from harness.probe import exchange, multipart, request, usage

MiB = 1 << 20
BOUNDARY = "memory-boundary"


@dataclass(frozen=True)
class Body:
    kind: str
    head: bytes  # request line and headers
    body: bytes


def noise_png(side: int, seed: int) -> bytes:
    """An RGB PNG of random pixels: it barely compresses, so its bytes are about 3 x side^2."""
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def bodies(model: str, latent_dim: int, size: int, image_bytes: int) -> list[Body]:
    """One body of each kind, each close to ``size`` bytes; images of about ``image_bytes``."""
    side = int((image_bytes / 3) ** 0.5)
    image = noise_png(side, 0)
    count = max(1, size // (len(image) * 4 // 3 + 64))
    images = [image] * count
    encoded = json.dumps({"images": [base64.b64encode(i).decode() for i in images]}).encode()
    form = multipart(images, BOUNDARY)
    rows = max(1, size // (4 * latent_dim))
    z = np.zeros((rows, latent_dim), dtype=np.float32)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "z",
                    "shape": [rows, latent_dim],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": z.nbytes},
                }
            ]
        }
    ).encode()
    v2_head = f"Inference-Header-Content-Length: {len(header)}\r\n"
    return [
        Body("JSON, base64 images", *_split(request("POST", "/encode", encoded, "application/json"))),
        Body(
            "multipart images",
            *_split(request("POST", "/encode", form, f"multipart/form-data; boundary={BOUNDARY}")),
        ),
        Body(".npy latents", *_split(request("POST", "/decode", npy_bytes(z), "application/x-npy"))),
        Body(
            "V2 binary tensor",
            *_split(
                request(
                    "POST",
                    f"/v2/models/{model}-decoder/infer",
                    header + z.tobytes(),
                    "application/octet-stream",
                    headers=v2_head,
                )
            ),
        ),
    ]


def _split(raw: bytes) -> tuple[bytes, bytes]:
    head, body = raw.split(b"\r\n\r\n", 1)
    return head + b"\r\n\r\n", body


@dataclass
class Attack:
    kind: str
    body_mib: float
    connections: int
    statuses: Counter
    seconds: float
    rss_before_mib: float
    peak_mib: float


def attack(port: int, pid: int | None, body: Body, connections: int) -> Attack:
    """``connections`` at once, each sending ``body``; the memory of process ``pid`` (when given)."""
    before = usage(pid).rss if pid is not None else 0
    start = time.perf_counter()
    with ThreadPoolExecutor(connections) as pool:
        answers = list(
            pool.map(lambda _: exchange(port, [body.head, body.body], timeout=120), range(connections))
        )
    took = time.perf_counter() - start
    return Attack(
        body.kind,
        len(body.body) / MiB,
        connections,
        Counter(a.status for a in answers),
        took,
        before / MiB,
        usage(pid).peak / MiB if pid is not None else 0.0,
    )


def table(attacks: list[Attack]) -> str:
    lines = [
        "| body | MiB each | connections | answers | seconds | RSS before (MiB) | peak RSS after (MiB) |",
        "|---|---:|---:|---|---:|---:|---:|",
    ]
    for a in attacks:
        answers = ", ".join(f"{n} x {s}" for s, n in sorted(a.statuses.items()))
        lines.append(
            f"| {a.kind} | {a.body_mib:.1f} | {a.connections} | {answers} | {a.seconds:.1f} | "
            f"{a.rss_before_mib:.0f} | {a.peak_mib:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from harness.ports import free_port
    from harness.processes import service

    p = argparse.ArgumentParser(prog="python -m reliability.memory", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--connections", type=int, default=256)
    p.add_argument("--out", type=Path, default=ROOT / "reliability" / "memory.md")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "reliability")
    args = p.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with service(args.models, args.logs, port, access_log="false", max_connections="2048") as process:
        served = json.loads(exchange(port, [request("GET", "/models")]).body)
        model = served["default_model"]
        latent_dim = next(m for m in served["models"] if m["default"])["manifest"]["latent_dim"]
        limits = served["limits"]
        kinds = bodies(
            model, latent_dim, limits["max_body_bytes"] - 64 * 1024, limits["max_image_bytes"] - 64 * 1024
        )
        attacks = [attack(port, process.pid, body, args.connections) for body in kinds]
    text = (
        f"`python -m reliability.memory`: {args.connections} connections at once, each one body of the "
        "kind named, to one worker with default settings (VAE_MAX_BODY_MEMORY_BYTES 32 MiB).\n\n"
        + table(attacks)
    )
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
