"""``python -m benchmarks.uploads`` (``make bench-uploads``): people's own digit images through the
service, measured.

1. Reconstruction: MNIST test digits made into uploads as people have them (harness/uploads.py:
   dark ink scanned large, a thick-pen drawing on a transparent canvas, a phone photo of grey paper,
   a small digit in a corner of a page; MNIST's own form as the ceiling), encoded by /encode and
   decoded by /decode; each reconstruction is read by a 1-nearest-neighbour classifier on MNIST's
   50,000 training digits, against the digit's true label.
2. Out of distribution: /score's percentile of test digits against things that are not digits
   (noise, blank-ish scans, shapes, letters), as AUROC with a 95% bootstrap interval; an image
   refused for having no ink counts as detected.
3. The protocol: the contract's binarized test digits uploaded as 0/255 PNGs, scored at K = 1000:
   the mean log p(x) against the model's exported test NLL.
4. The cost of K: mean log p(x) and time per image for K = 1 ... 1000.

Writes benchmarks/uploads.md and docs/uploads.png (an upload of each kind, what the model saw, and
its reconstruction).
"""

from __future__ import annotations

import argparse
import base64
import io
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
from PIL import Image
from sklearn.metrics import roc_auc_score

from benchmarks.cli import ROOT
from harness.ports import free_port
from harness.processes import service
from harness.uploads import KINDS, NOT_DIGITS
from training.data import binarize_fixed, load_mnist

BATCH = 32


class Nearest:
    """A 1-nearest-neighbour classifier on MNIST's training digits (Euclidean, on pixels in [0, 1])."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        self.x = images.reshape(len(images), -1).astype(np.float32) / 255
        self.norms = (self.x**2).sum(axis=1)
        self.labels = labels

    def __call__(self, x: np.ndarray) -> np.ndarray:
        flat = x.reshape(len(x), -1).astype(np.float32)
        return self.labels[(self.norms[None] - 2 * flat @ self.x.T).argmin(axis=1)]


def _post_files(http: httpx.Client, path: str, uploads: list[bytes], **fields: str) -> httpx.Response:
    files = [("files", (f"{i}", data, "application/octet-stream")) for i, data in enumerate(uploads)]
    return http.post(path, files=files, data=fields, timeout=300)


def reconstructions(http: httpx.Client, version: str, uploads: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """What the model saw, and its reconstruction at z = mu: both [N, 28, 28] in [0, 1]."""
    seen, recon = [], []
    for start in range(0, len(uploads), BATCH):
        body = _post_files(
            http, "/encode", uploads[start : start + BATCH], version=version, return_inputs="true"
        )
        body.raise_for_status()
        encoded = body.json()
        seen += [
            np.asarray(Image.open(io.BytesIO(base64.b64decode(p))), np.float32) / 255
            for p in encoded["inputs"]
        ]
        decoded = http.post("/decode", json={"z": encoded["mu"], "format": "array", "version": version})
        recon.append(np.asarray(decoded.json()["arrays"], np.float32)[:, 0])
    return np.stack(seen), np.concatenate(recon)


def percentiles(http: httpx.Client, version: str, uploads: list[bytes]) -> np.ndarray:
    """/score's percentile of each upload; -1 for one refused (no ink, not an image)."""
    out = []
    for data in uploads:
        answer = _post_files(http, "/score", [data], version=version, seed="0")
        out.append(answer.json()["percentile"][0] if answer.status_code == 200 else -1.0)
    return np.array(out)


def auroc(positives: np.ndarray, negatives: np.ndarray, rounds: int = 500) -> tuple[float, float, float]:
    """The probability that a random positive ranks above a random negative (ties count half), and
    its 95% bootstrap interval (both sets resampled): a few hundred images a kind leave the third
    decimal uncertain, and a goal such as 0.95 is judged against the interval, not the point."""
    labels = np.r_[np.ones(len(positives)), np.zeros(len(negatives))]
    point = roc_auc_score(labels, np.r_[positives, negatives])
    rng = np.random.default_rng(0)
    draws = [
        roc_auc_score(
            labels, np.r_[rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))]
        )
        for _ in range(rounds)
    ]
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(point), float(low), float(high)


def _interval(value: tuple[float, float, float]) -> str:
    return f"{value[0]:.3f} ({value[1]:.3f}-{value[2]:.3f})"


def protocol(http: httpx.Client, version: str, binary: np.ndarray, k: int) -> tuple[float, float]:
    """Mean log p(x) of binarized digits uploaded as 0/255 PNGs, and seconds per image."""
    pngs = [_png((b[0] * 255).astype(np.uint8)) for b in binary]
    per = max(1, min(64, 131072 // k))
    values, start = [], time.perf_counter()
    for i in range(0, len(pngs), per):
        answer = _post_files(http, "/score", pngs[i : i + per], version=version, k=str(k), seed=str(i))
        answer.raise_for_status()
        values += answer.json()["log_px"]
    return float(np.mean(values)), (time.perf_counter() - start) / len(pngs)


def _png(pixels: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _thumbnail(data: bytes) -> np.ndarray:
    """An upload as a person sees it: flattened onto white, grey, 28x28."""
    image = Image.open(io.BytesIO(data)).convert("RGBA")
    page = Image.new("RGBA", image.size, (255, 255, 255, 255))
    grey = Image.alpha_composite(page, image).convert("L")
    grey.thumbnail((28, 28))
    field = Image.new("L", (28, 28), 255)
    field.paste(grey, ((28 - grey.width) // 2, (28 - grey.height) // 2))
    return np.asarray(field, np.float32) / 255


def picture(rows: list[tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path) -> None:
    """One row per kind: the upload, what the model saw, the reconstruction; six digits each."""
    blocks = []
    for upload, seen, recon in rows:
        triples = [np.concatenate([u, s, r], axis=1) for u, s, r in zip(upload, seen, recon, strict=True)]
        blocks.append(np.concatenate([np.pad(t, 2, constant_values=0.5) for t in triples], axis=1))
    grid = np.concatenate(blocks, axis=0)
    Image.fromarray((grid * 255).astype(np.uint8)).resize(
        (grid.shape[1] * 3, grid.shape[0] * 3), Image.Resampling.NEAREST
    ).save(path)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.uploads", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--versions", nargs="+", default=["1", "2"], help="versions of mnist to measure")
    p.add_argument("--digits", type=int, default=1000, help="test digits per kind")
    p.add_argument(
        "--others",
        type=int,
        default=1000,
        help="images of each kind that is not a digit",
    )
    p.add_argument("--protocol", type=int, default=10_000, help="binarized test digits scored at K = 1000")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "uploads.md")
    p.add_argument("--picture", type=Path, default=ROOT / "docs" / "uploads.png")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "bench")
    args = p.parse_args()
    args.logs.mkdir(parents=True, exist_ok=True)
    mnist = load_mnist(ROOT / "data")
    nearest = Nearest(mnist.train.images[:, 0], mnist.train.labels)
    digits, labels = mnist.test.images[: args.digits, 0], mnist.test.labels[: args.digits]
    rng = np.random.default_rng(0)
    uploads = {kind: [make(d, rng) for d in digits] for kind, make in KINDS.items()}
    others = {kind: [make(rng) for _ in range(args.others)] for kind, make in NOT_DIGITS.items()}
    binary = binarize_fixed(mnist.test.images, seed=0)[: args.protocol]  # the contract's, of the whole set
    lines = [
        f"`make bench-uploads` (`python -m benchmarks.uploads`): {args.digits} MNIST test digits a kind, "
        f"{args.others} images of each kind that is not a digit, {args.protocol} binarized test digits for "
        "the protocol; one service process on 127.0.0.1.",
    ]
    port = free_port()
    with (
        service(args.models, args.logs, port, access_log="false", max_images="64") as _,
        httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=300) as http,
    ):
        served = http.get("/models").json()["models"]
        manifests = {m["version"]: m["manifest"] for m in served if m["model"] == "mnist"}  # not mnist2d
        for version in args.versions:
            lines += [
                f"\n## mnist/{version}\n",
                "| upload | reconstruction read as the true digit | input read as the true digit |",
                "|---|---:|---:|",
            ]
            rows = []
            for kind, data in uploads.items():
                seen, recon = reconstructions(http, version, data)
                read, saw = (nearest(recon) == labels).mean(), (nearest(seen) == labels).mean()
                lines.append(f"| {kind} | {read:.1%} | {saw:.1%} |")
                rows.append((np.stack([_thumbnail(d) for d in data[:6]]), seen[:6], recon[:6]))
                print(lines[-1], flush=True)
            if version == args.versions[-1]:
                picture(rows, args.picture)
            positives = {
                kind: percentiles(http, version, uploads[kind][: args.others]) for kind in ("mnist", "scan")
            }
            lines += [
                "",
                "| not a digit | AUROC (95% interval), MNIST-form digits | scanned digits | no ink |",
                "|---|---:|---:|---:|",
            ]
            for kind, data in others.items():
                negatives = percentiles(http, version, data)
                plain, scanned = auroc(positives["mnist"], negatives), auroc(positives["scan"], negatives)
                refused = (negatives < 0).mean()
                lines.append(f"| {kind} | {_interval(plain)} | {_interval(scanned)} | {refused:.0%} |")
                print(lines[-1], flush=True)
            exported = manifests[version]["metrics"]
            mean, seconds = protocol(http, version, binary, 1000)
            nll, nll_k = exported["test_nll_nats"], exported["nll_importance_samples"]
            lines += [
                "",
                f"Protocol: {len(binary)} binarized test digits as 0/255 PNGs, /score at K = 1000: mean "
                f"log p(x) {mean:.2f} nats; exported test NLL {nll:.2f} nats at K = {nll_k} (difference "
                f"{abs(-mean - nll):.2f}); {seconds * 1000:.1f} ms an image.",
                "",
                "| K | mean log p(x), nats | ms an image |",
                "|---:|---:|---:|",
            ]
            print(lines[-5], flush=True)
            for k in (1, 10, 100, 1000):
                mean_k, seconds_k = protocol(http, version, binary[:500], k)
                lines.append(f"| {k} | {mean_k:.2f} | {seconds_k * 1000:.2f} |")
                print(lines[-1], flush=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out} and {args.picture}")


if __name__ == "__main__":
    main()
