"""``python -m benchmarks.tune`` (``make bench-tune``): how the service's defaults were chosen.

Sweeps one setting at a time from the defaults, with the workloads it matters to, and writes a
markdown table of requests/s and p99 for each value.
"""

from __future__ import annotations

from benchmarks import cli
from benchmarks.__main__ import serving
from benchmarks.load import Point, run_wrk, wrk_available
from benchmarks.workloads import workloads

SWEEPS: dict[str, tuple[list[str], list[str]]] = {  # setting -> (values, workloads by name prefix)
    "png_compress_level": (["0", "1", "6"], ["/decode, 16 latents, JSON", "/sample"]),
    "max_inline_rows": (["0", "16", "64", "256"], ["/decode, 1 latent", "/decode, 16 latents, .npy"]),
    "max_batch_delay_ms": (["0", "0.5", "2"], ["/decode, 1 latent"]),
    "max_batch_size": (["1", "16", "64", "256"], ["/decode, 1 latent", "/decode, 16 latents, .npy"]),
    "ort_threads": (["1", "2"], ["/decode, 16 latents, .npy", "/encode"]),
}


def main() -> None:
    options = cli.parser("python -m benchmarks.tune", __doc__, seconds=5, out="tuning.md")
    options.add_argument("--only", default="", help="sweep only the settings whose name contains this")
    args = cli.parse(options, wrk_available())
    manifest, _, digits = cli.model_and_digits(args.models / args.model, rows=16)
    by_name = workloads(manifest.latent_dim, digits)

    lines = [
        f"`make bench-tune`: {args.seconds} s of wrk per point, one setting changed at a time from the "
        "defaults.",
        "",
        "| Setting | Value | Workload | Connections | Requests/s | Images/s | p50 ms | p99 ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for setting, (values, prefixes) in SWEEPS.items():
        if args.only not in setting:
            continue
        chosen = [w for w in by_name if any(w.name.startswith(p) for p in prefixes)]
        for value in values:
            with serving(args.models, args.logs, default_model=manifest.name, **{setting: value}) as served:
                for workload in chosen:
                    for connections in args.connections:
                        point = run_wrk(served.url, workload, connections, args.seconds)
                        line = f"| {setting} | {value} | {workload.name} | {connections} | {_cells(point)} |"
                        print(line, flush=True)
                        lines.append(line)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"written to {args.out}")


def _cells(p: Point) -> str:
    return f"{p.requests_per_s:,.0f} | {p.images_per_s:,.0f} | {p.p50_ms:.2f} | {p.p99_ms:.2f}"


if __name__ == "__main__":
    main()
