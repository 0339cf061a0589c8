"""``python -m benchmarks.page`` (``make bench-page``): the web page as a person first meets it, in
headless Chromium against one service process on 127.0.0.1 serving the shipped models.

For each of ``--loads`` fresh page loads (every file refetched: the service sends no-store):
- time to the first sample grid: from the start of navigation to the moment the page has drawn its
  first grid (the page's ``first-grid`` performance mark), so HTML, scripts, /models and /sample;
- bytes transferred, from the browser's own Resource Timing: the page's files (HTML, scripts, style)
  and the API's answers it fetched for its first view (models, the grid, the latent map's tiles).
Reports medians and writes benchmarks/page.md; then draws a seven and writes the top of the page
as docs/page.png, the README's picture.
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
from pathlib import Path

from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from benchmarks.cli import ROOT
from harness.browser import SEVEN, chromium, draw, missing
from harness.ports import free_port
from harness.processes import service

TIMINGS = """
const nav = performance.getEntriesByType("navigation")[0];
const resources = performance.getEntriesByType("resource");
const api = resources.filter((r) => r.initiatorType === "fetch");
const files = resources.filter((r) => r.initiatorType !== "fetch");
const sum = (list) => list.reduce((total, r) => total + r.transferSize, 0);
return {
  first_grid_ms: performance.getEntriesByName("first-grid")[0].startTime,
  page_bytes: nav.transferSize + sum(files),
  page_files: files.length + 1,
  api_bytes: sum(api),
  api_calls: api.length,
  mapped: document.body.dataset.mapped || null,
};
"""


def measure(url: str, loads: int) -> list[dict]:
    runs = []
    with chromium() as driver:
        for _ in range(loads):
            driver.get(url + "/")
            # the latent map is drawn beside the grid; wait for it too, so every answer is counted
            WebDriverWait(driver, 60, poll_frequency=0.02).until(
                lambda d: d.execute_script(
                    "return document.body.dataset.sampled && "
                    "(document.body.dataset.mapped || document.getElementById('map-model').disabled)"
                )
            )
            runs.append(driver.execute_script(TIMINGS))
    return runs


def picture(url: str, path: Path) -> None:
    """The page with a drawn seven encoded, scored and its code drawn: header and first panel."""
    with chromium(width=1100, height=1400) as driver:
        driver.get(url + "/")
        WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.body.dataset.sampled"))
        draw(driver, SEVEN)
        WebDriverWait(driver, 60).until(lambda d: "%" in d.find_element(By.ID, "score-words").text)
        bottom = driver.find_element(By.ID, "as-start").rect
        shot = Image.open(io.BytesIO(driver.get_screenshot_as_png()))
        top = shot.crop((0, 0, shot.width, min(shot.height, int(bottom["y"] + bottom["height"] + 16))))
        top.convert("RGB").quantize(64).save(path, optimize=True)  # a screenshot needs few colours


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.page", description=__doc__)
    p.add_argument("--models", type=Path, default=ROOT / "models")
    p.add_argument("--loads", type=int, default=15, help="page loads, each refetching everything")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "page.md")
    p.add_argument("--picture", type=Path, default=ROOT / "docs" / "page.png")
    p.add_argument("--logs", type=Path, default=ROOT / "runs" / "bench")
    args = p.parse_args()
    reason = missing()
    if reason:
        raise SystemExit(reason)
    args.logs.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with service(args.models, args.logs, port, access_log="false"):
        runs = measure(f"http://127.0.0.1:{port}", args.loads)
        picture(f"http://127.0.0.1:{port}", args.picture)
    first = runs[0]

    def row(label: str, key: str, unit: str) -> str:
        values = [r[key] for r in runs]
        middle, low, high = statistics.median(values), min(values), max(values)
        return f"| {label}, {unit} | {middle:,.0f} | {low:,.0f} | {high:,.0f} |"

    total = statistics.median(r["page_bytes"] + r["api_bytes"] for r in runs)
    lines = [
        f"`make bench-page` (`python -m benchmarks.page`): {len(runs)} loads of the web page in headless "
        f"Chromium, one service process on 127.0.0.1 ({platform.machine()}), the shipped models.",
        "",
        "| measure | median | min | max |",
        "|---|---:|---:|---:|",
        row("opening the page to the first sample grid drawn", "first_grid_ms", "ms"),
        row(f"the page's own files ({first['page_files']}: HTML, scripts, style)", "page_bytes", "bytes"),
        row(f"the API's answers for the first view ({first['api_calls']} calls)", "api_bytes", "bytes"),
        "",
        f"Total transferred for the first view (models, a 16-digit grid, the latent map): {total:,.0f} bytes "
        "(median).",
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
