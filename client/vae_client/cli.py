"""``vae-client``: encode or score a folder of images, sample and interpolate, from the shell.

    vae-client encode photos/ --out latents.npz [--csv latents.csv]
    vae-client score photos/ --out scores.csv [--k 100]
    vae-client sample --n 64 --out grid.png
    vae-client interpolate --start a.png --end b.png --steps 8 --out path.png

``encode`` and ``score`` walk the folder, send the images in parts (each split to the server's
limits and sent concurrently), and keep each finished part under ``<out>.partial/``: run the same
command again after an interruption and it goes on where it stopped. Files the server cannot read
are skipped and listed (on stderr, and in the npz's ``failed_names``/``failed_reasons`` or as CSV
rows with a reason) without stopping.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vae_client.client import Client
from vae_client.errors import ClientError
from vae_client.inputs import grid
from vae_client.retry import Retry

PART_FILES = 1024  # images per part kept on disk: what an interruption can cost
# the still-image formats the service reads (PNG, JPEG, GIF, BMP, WebP, TIFF), by file name
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".gif", ".bmp", ".webp", ".tif", ".tiff"})


def _client(args: argparse.Namespace) -> Client:
    return Client(
        args.url,
        token=args.token,
        model=args.model,
        version=args.version,
        concurrency=args.concurrency,
        retry=Retry(attempts=args.retries),
    )


def image_files(folder: Path) -> list[str]:
    """Every image file under ``folder`` (by extension), as sorted relative paths."""
    return sorted(
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )


class Parts:
    """The parts of an encode run finished so far, one npz each, plus the files refused."""

    def __init__(self, out: Path) -> None:
        self.folder = out.with_name(out.name + ".partial")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.failed_log = self.folder / "failed.jsonl"

    def done(self) -> set[str]:
        names = {str(n) for p in self.folder.glob("part-*.npz") for n in np.load(p)["names"]}
        return names | set(self.failed())

    def failed(self) -> dict[str, str]:
        if not self.failed_log.exists():
            return {}
        records = [json.loads(line) for line in self.failed_log.read_text().splitlines() if line]
        return {r["name"]: r["reason"] for r in records}

    def save(
        self, number: int, names: list[str], arrays: dict[str, np.ndarray], failed: dict[str, str]
    ) -> None:
        target = self.folder / f"part-{number:06d}.npz"
        temporary = self.folder / f".part-{number:06d}.npz"
        np.savez(temporary, names=np.array(names, dtype=str), **arrays)  # type: ignore[arg-type]
        os.replace(temporary, target)  # a part is there whole or not at all
        with self.failed_log.open("a") as log:
            for name, reason in failed.items():
                log.write(json.dumps({"name": name, "reason": reason}) + "\n")

    def merged(self, keys: tuple[str, ...]) -> tuple[list[str], dict[str, np.ndarray]]:
        """Every part's names and arrays, in name order."""
        parts = [np.load(p) for p in sorted(self.folder.glob("part-*.npz"))]
        parts = [part for part in parts if len(part["names"])]
        names = [str(n) for part in parts for n in part["names"]]
        if not names:
            return [], {key: np.zeros((0, 0), np.float32) for key in keys}
        order = np.argsort(names, kind="stable")
        return [names[i] for i in order], {
            key: np.concatenate([p[key] for p in parts])[order] for key in keys
        }


def _in_parts(args: argparse.Namespace, send) -> Parts:  # type: ignore[no-untyped-def]
    """Every image of the folder not done yet, sent part by part with ``send(vae, images, bar)``,
    which returns (input indices answered, arrays of their rows, refused input index -> reason);
    each finished part is saved, so that the same command goes on after an interruption."""
    folder: Path = args.folder
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder")
    files = image_files(folder)
    parts = Parts(args.out)
    done = parts.done()
    todo = [f for f in files if f not in done]
    first_part = len(list(parts.folder.glob("part-*.npz")))
    with _client(args) as vae, tqdm(total=len(files), initial=len(files) - len(todo), unit="img") as bar:
        for k in range(0, len(todo), args.part_size):
            names, readable, failed = todo[k : k + args.part_size], [], {}
            for name in names:
                try:
                    readable.append((name, (folder / name).read_bytes()))
                except OSError as e:
                    failed[name] = f"cannot be read: {e.strerror}"
                    bar.update(1)
            indices, arrays, refused = send(vae, [data for _, data in readable], bar)
            failed |= {readable[i][0]: reason for i, reason in refused.items()}
            parts.save(first_part + k // args.part_size, [readable[i][0] for i in indices], arrays, failed)
    return parts


def _report(parts: Parts, what: str, out: Path, count: int) -> None:
    failed = parts.failed()
    shutil.rmtree(parts.folder)
    print(f"{count} images {what} to {out}; {len(failed)} skipped", file=sys.stderr)
    for name, reason in failed.items():
        print(f"  skipped {name}: {reason}", file=sys.stderr)


def encode(args: argparse.Namespace) -> int:
    def send(vae: Client, images: list[bytes], bar: tqdm) -> tuple:  # type: ignore[type-arg]
        encoded = vae.encode(images, skip_bad=True, on_progress=bar.update)
        return encoded.indices, {"mu": encoded.mu, "sigma": encoded.sigma}, encoded.failed

    parts = _in_parts(args, send)
    names, arrays = parts.merged(("mu", "sigma"))
    mu, sigma = arrays["mu"], arrays["sigma"]
    failed = parts.failed()
    np.savez(
        args.out,
        names=np.array(names, dtype=str),
        mu=mu,
        sigma=sigma,
        failed_names=np.array(list(failed), dtype=str),
        failed_reasons=np.array(list(failed.values()), dtype=str),
    )
    if args.csv is not None:
        _write_csv(args.csv, names, mu, sigma)
    _report(parts, "encoded", args.out, len(names))
    return 0


SCORES = ("log_px", "elbo", "bits_per_dim", "percentile")


def score(args: argparse.Namespace) -> int:
    def send(vae: Client, images: list[bytes], bar: tqdm) -> tuple:  # type: ignore[type-arg]
        scored = vae.score(images, k=args.k, seed=args.seed, skip_bad=True, on_progress=bar.update)
        return scored.indices, {key: getattr(scored, key) for key in SCORES}, scored.failed

    parts = _in_parts(args, send)
    names, arrays = parts.merged(SCORES)
    failed = parts.failed()
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *SCORES, "skipped"])
        for i, name in enumerate(names):
            writer.writerow([name, *(round(float(arrays[key][i]), 4) for key in SCORES), ""])
        for name, reason in failed.items():
            writer.writerow([name, "", "", "", "", reason])
    _report(parts, "scored", args.out, len(names))
    return 0


def _write_csv(path: Path, names: list[str], mu: np.ndarray, sigma: np.ndarray) -> None:
    dim = mu.shape[1] if mu.ndim == 2 else 0
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *(f"mu_{j}" for j in range(dim)), *(f"sigma_{j}" for j in range(dim))])
        for name, m, s in zip(names, mu, sigma, strict=True):
            writer.writerow([name, *m.tolist(), *s.tolist()])


def sample(args: argparse.Namespace) -> int:
    with _client(args) as vae:
        images = vae.sample(args.n, seed=args.seed, temperature=args.temperature)
    grid(images).save(args.out, format="PNG")
    print(f"{len(images)} samples written to {args.out}", file=sys.stderr)
    return 0


def interpolate(args: argparse.Namespace) -> int:
    with _client(args) as vae:
        images = vae.interpolate(args.start, args.end, steps=args.steps, method=args.method)
    grid(images, ncol=len(images)).save(args.out, format="PNG")
    print(f"{len(images)} images from {args.start} to {args.end} written to {args.out}", file=sys.stderr)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vae-client", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--url", default=os.environ.get("VAE_URL", "http://127.0.0.1:8000"), help="the service (env VAE_URL)"
    )
    p.add_argument("--token", default=os.environ.get("VAE_TOKEN"), help="bearer token (env VAE_TOKEN)")
    p.add_argument("--model", help="model name (default: the service's default)")
    p.add_argument("--version", help="model version (default: the highest)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once (default: 4)")
    p.add_argument(
        "--retries",
        type=int,
        default=Retry.attempts,
        help=f"tries of each request when the service is busy or away (default: {Retry.attempts})",
    )
    commands = p.add_subparsers(dest="command", required=True)

    e = commands.add_parser("encode", help="encode every image under a folder to mu and sigma")
    e.add_argument("folder", type=Path)
    e.add_argument("--out", type=Path, required=True, help="npz with names, mu, sigma and the files skipped")
    e.add_argument("--csv", type=Path, help="also write name, mu_*, sigma_* as CSV")
    e.add_argument("--part-size", type=int, default=PART_FILES, help="images per part saved for resuming")
    e.set_defaults(run=encode)

    c = commands.add_parser("score", help="score every image of a folder: how likely it is, log p(x)")
    c.add_argument("folder", type=Path)
    c.add_argument(
        "--out", type=Path, required=True, help="CSV: name, log_px, elbo, bits_per_dim, percentile"
    )
    c.add_argument("--k", type=int, help="importance samples per image (default: the server's)")
    c.add_argument("--seed", type=int, help="seed of the samples: the same seed, the same numbers")
    c.add_argument("--part-size", type=int, default=PART_FILES, help="images per part saved for resuming")
    c.set_defaults(run=score)

    s = commands.add_parser("sample", help="sample images from the prior into one PNG grid")
    s.add_argument("--n", type=int, default=64)
    s.add_argument("--seed", type=int)
    s.add_argument("--temperature", type=float, default=1.0)
    s.add_argument("--out", type=Path, required=True)
    s.set_defaults(run=sample)

    i = commands.add_parser("interpolate", help="images between two images, in one PNG row")
    i.add_argument("--start", type=Path, required=True)
    i.add_argument("--end", type=Path, required=True)
    i.add_argument("--steps", type=int, default=8)
    i.add_argument("--method", choices=["linear", "slerp"], default="slerp")
    i.add_argument("--out", type=Path, required=True)
    i.set_defaults(run=interpolate)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except ClientError as e:
        print(f"vae-client: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
