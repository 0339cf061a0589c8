"""``python -m benchmarks.profile`` (``make bench-profile``): where a request's time goes, by cProfile.

The service runs as one process under cProfile (``python -m cProfile -m service``) while wrk sends one
workload at 32 connections; at SIGTERM it writes its profile, and the functions that used the most
time of their own are tabled, with their share of the process's profiled time. cProfile slows
Python code more than C code, so the shares are a map of where to look, not a stopwatch.
Writes benchmarks/profile.md (one section per workload).
"""

from __future__ import annotations

import argparse
import io
import pstats
import signal
import sys
from pathlib import Path

from benchmarks import cli
from benchmarks.cli import ROOT, model_and_digits, single_model
from benchmarks.load import run_wrk, wrk_available
from benchmarks.workloads import workloads
from harness.ports import free_port
from harness.processes import answers, running, service_env


def _where(key: tuple[str, int, str]) -> str:
    filename, line, function = key
    if filename == "~":  # a builtin or a C function
        return function
    path = Path(filename)
    if "site-packages" in path.parts:
        path = Path(*path.parts[path.parts.index("site-packages") + 1 :])
    elif path.is_relative_to(ROOT):
        path = path.relative_to(ROOT)
    else:  # the standard library
        path = Path(path.name)
    return f"{path}:{line} {function}"


def _package(key: tuple[str, int, str]) -> str:
    """Whose code a function is: a third-party package, a folder of this project, the standard
    library, or C (builtins and extension methods)."""
    path = _where(key).split(":", 1)[0]
    if key[0] == "~":
        return "C functions (numpy, Pillow, onnxruntime, builtins)"
    head = Path(path).parts[0]
    return "standard library" if head == path and path.endswith(".py") else head


def profile(args: argparse.Namespace, workload_name: str) -> list[str]:
    logs, seconds, connections = args.logs, args.seconds, max(args.connections)
    manifest, _, digits = model_and_digits(args.models / args.model, rows=16)
    workload = next(w for w in workloads(manifest.latent_dim, digits) if workload_name in w.name)
    models = single_model(args.models, args.model, logs)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    output = logs / f"profile-{port}.prof"
    env = service_env(models, port, logs / f"metrics-{port}", default_model=manifest.name, access_log="false")
    command = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "service"]
    with running(
        command, logs / f"profile-{port}.log", answers(url + "/readyz"), env=env, cwd=ROOT
    ) as process:
        point = run_wrk(url, workload, connections, seconds)
        # SIGINT, not SIGTERM: uvicorn raises the stopping signal again as it ends, and only SIGINT
        # (a KeyboardInterrupt) lets cProfile write its file on the way out
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    stats = pstats.Stats(str(output), stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[: args.top]  # type: ignore[attr-defined]
    lines = [
        f"\n## {workload.name}, {connections} connections\n",
        f"{point.requests_per_s:.0f} requests/s under the profiler ({seconds} s); profiled {total:.1f} s.",
        "",
        "| function | calls | own time, s | share |",
        "|---|---:|---:|---:|",
    ]
    for key, (_, calls, own, _, _) in rows:
        lines.append(f"| `{_where(key)}` | {calls:,} | {own:.2f} | {own / total:.1%} |")
    by_package: dict[str, float] = {}
    for key, (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        by_package[_package(key)] = by_package.get(_package(key), 0.0) + own
    lines += ["", "| whose code | own time, s | share |", "|---|---:|---:|"]
    for package, own in sorted(by_package.items(), key=lambda item: item[1], reverse=True)[:12]:
        lines.append(f"| {package} | {own:.2f} | {own / total:.1%} |")
    return lines


def main() -> None:
    p = cli.parser("python -m benchmarks.profile", __doc__, seconds=10, out="profile.md")
    p.add_argument("--workloads", nargs="+", default=["/encode", "/decode, 1 latent"])
    p.add_argument("--top", type=int, default=20, help="functions in each table")
    args = cli.parse(p, wrk_available())
    lines = [
        f"`make bench-profile` (`python -m benchmarks.profile`): the service ({args.model}, one process, "
        "access log off) under cProfile while wrk sends the workload; the functions with the most time "
        "of their own."
    ]
    for name in args.workloads:
        lines += profile(args, name)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
