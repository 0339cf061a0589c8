"""``python -m benchmarks.client`` (``make bench-client``): the ``vae-client`` CLI encoding a folder of
10,000 PNG digits end to end (walking the folder, reading the files, uploading, writing the npz),
timed from its start to its exit, against a local server of one and of two workers.

The digits are MNIST's test set when ``data/mnist.npz`` is there (``make train`` fetches it), else
the shipped decoder's images of fixed latents. Writes benchmarks/client.md and prints it.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.cli import ROOT, model_and_digits
from harness.ports import free_port
from harness.processes import service

CLI = str(Path(sys.executable).with_name("vae-client"))


def write_digits(folder: Path, count: int, models: Path) -> str:
    """``count`` 28x28 PNG digits in ten sub-folders; says where they came from."""
    mnist = ROOT / "data" / "mnist.npz"
    if mnist.exists():
        with np.load(mnist) as f:
            pixels, source = f["test_images"][:count, 0], "MNIST's test set"
    else:
        _, _, x = model_and_digits(models / "mnist" / "1", count)
        pixels, source = (np.clip(x[:, 0], 0, 1) * 255).round().astype(np.uint8), "the decoder's images"
    for i, image in enumerate(pixels):
        sub = folder / f"{i % 10}"
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:05d}.png")
    return source


def encode_folder(url: str, folder: Path, out: Path, concurrency: int) -> float:
    start = time.perf_counter()
    run = subprocess.run(
        [CLI, "--url", url, "--concurrency", str(concurrency), "encode", str(folder), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.client", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--images", type=int, default=10_000)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8])
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "client.md")
    p.add_argument("--work", type=Path, default=ROOT / "runs" / "bench-client")
    args = p.parse_args()
    folder = args.work / "digits"
    if not folder.exists() or sum(1 for _ in folder.rglob("*.png")) != args.images:
        source = write_digits(folder, args.images, args.models)
    else:
        source = "the folder written before"
    lines = [
        f"`vae-client encode` of {args.images:,} PNG digits ({source}), end to end, on "
        f"{platform.processor() or platform.machine()} with {len(os.sched_getaffinity(0))} "
        "cores shared by the server and the CLI; `python -m benchmarks.client`.",
        "",
        "| server workers | CLI concurrency | seconds | images/s |",
        "|---|---|---|---|",
    ]
    for workers in args.workers:
        port = free_port()
        with service(args.models, args.work, port, workers=str(workers), access_log="false"):
            for concurrency in args.concurrency:
                out = args.work / f"latents-{workers}-{concurrency}.npz"
                out.unlink(missing_ok=True)
                seconds = encode_folder(f"http://127.0.0.1:{port}", folder, out, concurrency)
                with np.load(out) as saved:
                    assert len(saved["names"]) == args.images, "every image must be encoded"
                lines.append(f"| {workers} | {concurrency} | {seconds:.1f} | {args.images / seconds:,.0f} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
