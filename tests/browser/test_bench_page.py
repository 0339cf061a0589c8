"""`make bench-page` in miniature, so that it cannot rot: two loads, its table and its picture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from harness import ROOT


def test_the_page_benchmark_reports_time_and_bytes_and_draws_the_readme_picture(tmp_path: Path) -> None:
    out, picture = tmp_path / "page.md", tmp_path / "page.png"
    command = [sys.executable, "-m", "benchmarks.page", "--loads", "2", "--out", str(out)]
    command += ["--picture", str(picture), "--logs", str(tmp_path)]
    subprocess.run(command, cwd=ROOT, check=True, timeout=240)
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| ")][1:]
    assert [r[1].split(",")[0].strip() for r in rows] == [
        "opening the page to the first sample grid drawn",
        "the page's own files (6: HTML",
        "the API's answers for the first view (6 calls)",
    ]
    assert all(float(r[2].replace(",", "")) > 0 for r in rows)
    with Image.open(picture) as image:
        assert image.width == 1100 and image.height > 600
