"""``python -m benchmarks.compare --before REV`` (``make bench-compare``): this tree's service and
the service of an earlier commit, both up side by side on the same models, taking turns point by
point under wrk for every workload, several rounds; reports the median requests/s of each and their
ratio. What a change costs or gains, measured in one run on one machine.
"""

from __future__ import annotations

import statistics
import subprocess
import tempfile
from contextlib import ExitStack
from pathlib import Path

from benchmarks import cli
from benchmarks.load import run_wrk, wrk_available
from benchmarks.workloads import workloads
from harness.ports import free_port
from harness.processes import service


def checkout(rev: str, folder: Path) -> Path:
    """The tree of commit ``rev`` in ``folder`` (a detached worktree; removed by the caller)."""
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), rev], cwd=cli.ROOT, check=True)
    return folder


def main() -> None:
    options = cli.parser("python -m benchmarks.compare", __doc__, seconds=5, out="compare.md")
    options.add_argument("--before", required=True, help="the commit to compare with (e.g. HEAD~3)")
    options.add_argument("--rounds", type=int, default=3, help="turns of every point for each side")
    options.add_argument("--only", default="", help="run only the workloads whose name contains this")
    args = cli.parse(options, wrk_available())
    manifest, _, digits = cli.model_and_digits(args.models / args.model, rows=16)
    chosen = [w for w in workloads(manifest.latent_dim, digits) if args.only in w.name]
    rates: dict[tuple[str, int, str], list[float]] = {}
    with ExitStack() as stack, tempfile.TemporaryDirectory() as tmp:
        before = checkout(args.before, Path(tmp) / "before")
        stack.callback(subprocess.run, ["git", "worktree", "remove", "--force", str(before)], cwd=cli.ROOT)
        urls = {}
        for side, tree in (("before", before), ("after", cli.ROOT)):
            port = free_port()
            settings = {"default_model": manifest.name, "access_log": "true"}
            stack.enter_context(service(args.models, args.logs, port, cwd=tree, **settings))
            urls[side] = f"http://127.0.0.1:{port}"
        for _ in range(args.rounds):
            for workload in chosen:
                for connections in args.connections:
                    for side, url in urls.items():
                        point = run_wrk(url, workload, connections, args.seconds)
                        rates.setdefault((workload.name, connections, side), []).append(point.requests_per_s)
                        rate = point.requests_per_s
                        print(f"{side:6} {connections:3} conn  {workload.name:28} {rate:9.0f} req/s")
    lines = [
        f"`python -m benchmarks.compare --before {args.before}`: median requests/s of {args.rounds} turns "
        f"of {args.seconds} s each, both services up side by side, access log on, model {args.model}.",
        "",
        "| Workload | Connections | Before | After | After / before |",
        "|---|---:|---:|---:|---:|",
    ]
    for workload in chosen:
        for connections in args.connections:
            before_rate = statistics.median(rates[(workload.name, connections, "before")])
            after_rate = statistics.median(rates[(workload.name, connections, "after")])
            lines.append(
                f"| {workload.name} | {connections} | {before_rate:,.0f} | {after_rate:,.0f} | "
                f"{after_rate / before_rate:.2f}x |"
            )
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
