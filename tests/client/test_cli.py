"""``vae-client`` as a user runs it: a real process against a real server, on a folder of real
images with broken files among them; interrupted and run again; sample and interpolate to PNG."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx
import numpy as np
import pytest
from PIL import Image

from harness.ports import free_port
from harness.processes import service

pytestmark = pytest.mark.server  # starts real processes

CLI = str(Path(sys.executable).with_name("vae-client"))


def _size(png: Path) -> tuple[int, int]:
    with Image.open(png) as image:
        return image.size


def _run(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CLI, "--url", url, *args], capture_output=True, text=True, timeout=120)


def test_encode_a_folder_skipping_broken_files(server_url: str, digit_folder: Path, tmp_path: Path) -> None:
    out, table = tmp_path / "latents.npz", tmp_path / "latents.csv"
    run = _run(
        server_url, "encode", str(digit_folder), "--out", str(out), "--csv", str(table), "--part-size", "7"
    )
    assert run.returncode == 0, run.stderr
    saved = np.load(out)
    names = list(saved["names"])
    assert len(names) == 30 and names == sorted(names) and names[0] == "even/000.png"
    assert saved["mu"].shape == saved["sigma"].shape == (30, 4)
    assert sorted(saved["failed_names"]) == ["notes.jpg", "odd/broken.png"]
    assert all("not a recognised image format" in r for r in saved["failed_reasons"])
    assert "30 images encoded" in run.stderr and "skipped odd/broken.png" in run.stderr
    native = httpx.post(
        f"{server_url}/encode", files=[("files", ("a.png", (digit_folder / "odd" / "013.png").read_bytes()))]
    ).json()
    np.testing.assert_allclose(saved["mu"][names.index("odd/013.png")], native["mu"][0], rtol=1e-5)
    rows = list(csv.reader(table.read_text().splitlines()))
    assert rows[0][:2] == ["name", "mu_0"] and len(rows) == 31 and len(rows[1]) == 1 + 2 * 4
    assert not out.with_name("latents.npz.partial").exists()


def test_score_a_folder_to_csv(server_url: str, digit_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "scores.csv"
    run = _run(
        server_url,
        "score",
        str(digit_folder),
        "--out",
        str(out),
        "--k",
        "20",
        "--seed",
        "1",
        "--part-size",
        "9",
    )
    assert run.returncode == 0, run.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    scored = [r for r in rows if not r["skipped"]]
    assert len(scored) == 30 and [r["name"] for r in scored] == sorted(r["name"] for r in scored)
    assert all(float(r["elbo"]) <= float(r["log_px"]) + 1e-3 for r in scored)
    skipped = {r["name"]: r["skipped"] for r in rows if r["skipped"]}
    assert sorted(skipped) == ["notes.jpg", "odd/broken.png"] and "30 images scored" in run.stderr
    assert not out.with_name("scores.csv.partial").exists()


def test_an_interrupted_encode_goes_on_where_it_stopped(
    model_repository: Path, digit_folder: Path, tmp_path: Path
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = tmp_path / "latents.npz"
    partial = tmp_path / "latents.npz.partial"
    # each request waits 300 ms for company: slow enough to stop the client between parts
    settings = {"default_model": "digits", "max_batch_delay_ms": "300", "access_log": "false"}
    with service(model_repository, tmp_path, port, **settings):
        args = [CLI, "--url", url, "--concurrency", "1", "encode", str(digit_folder), "--out", str(out)]
        first = subprocess.Popen([*args, "--part-size", "4"], stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while len(list(partial.glob("part-*.npz"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        first.kill()  # as abruptly as a crash
        first.wait()
        kept = {str(n) for p in partial.glob("part-*.npz") for n in np.load(p)["names"]}
        assert 8 <= len(kept) < 30 and not out.exists()
        second = subprocess.run([*args, "--part-size", "4"], capture_output=True, text=True, timeout=120)
        encoded_again = sum(
            float(line.split()[-1])
            for line in httpx.get(f"{url}/metrics").text.splitlines()
            if line.startswith('vae_images_total{endpoint="/encode"')
        )
    assert second.returncode == 0, second.stderr
    saved = np.load(out)
    assert len(saved["names"]) == 30 and len(set(saved["names"])) == 30
    assert encoded_again <= 30 + 4  # only the part in flight when it was killed went twice


def test_sample_and_interpolate_write_pngs(server_url: str, digit_folder: Path, tmp_path: Path) -> None:
    grid = tmp_path / "grid.png"
    assert _run(server_url, "sample", "--n", "40", "--seed", "1", "--out", str(grid)).returncode == 0
    assert _size(grid) == (7 * 8 + 8 * 2, 6 * 8 + 7 * 2)  # 40 images: 7 columns, 6 rows
    path = tmp_path / "path.png"
    start, end = digit_folder / "even" / "000.png", digit_folder / "odd" / "001.png"
    run = _run(
        server_url,
        "interpolate",
        "--start",
        str(start),
        "--end",
        str(end),
        "--steps",
        "6",
        "--out",
        str(path),
    )
    assert run.returncode == 0, run.stderr
    assert _size(path) == (6 * 8 + 7 * 2, 8 + 2 * 2)


def test_errors_are_one_line_and_a_nonzero_exit(tmp_path: Path) -> None:
    nobody = f"http://127.0.0.1:{free_port()}"
    run = _run(nobody, "--retries", "2", "sample", "--n", "4", "--out", str(tmp_path / "x.png"))
    assert run.returncode == 1 and run.stderr.startswith("vae-client: GET /models: 2 tries, the last:")
