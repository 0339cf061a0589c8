"""Reloading models while a real two-worker server is under load: SIGHUP and POST /admin/reload swap
in new versions, keep serving when a new one is broken, and no request fails meanwhile."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from harness.ports import free_port
from harness.processes import service, wait_until

pytestmark = pytest.mark.server  # starts real processes

ADMIN = "admin-secret"


def _served_everywhere(url: str, expected: list[str], tries: int = 100) -> bool:
    """True once 8 answers in a row, each on a new connection (so from either worker), list ``expected``."""
    streak = 0
    for _ in range(tries):
        models = httpx.get(f"{url}/models", timeout=10).json()["models"]
        streak = streak + 1 if sorted(f"{m['model']}/{m['version']}" for m in models) == expected else 0
        if streak == 8:
            return True
        time.sleep(0.1)
    return False


def _load(url: str, stop: threading.Event, seen: Counter) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(5000):  # bounded; the test stops it much sooner
            if stop.is_set():
                return
            response = client.post(f"{url}/decode", json={"z": [[0.5] * 4]})
            seen[(response.status_code, response.json().get("version"))] += 1


def test_reloads_swap_models_under_load_without_failing_a_request(
    model_repository: Path, tmp_path: Path
) -> None:
    models, staging = tmp_path / "models", tmp_path / "staging"
    shutil.copytree(model_repository, models)
    shutil.move(models / "digits" / "10", staging)  # published later
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = {"default_model": "digits", "workers": "2", "admin_token": ADMIN, "access_log": "false"}
    seen: Counter = Counter()
    stop = threading.Event()
    with service(models, tmp_path, port, **settings) as process, ThreadPoolExecutor(4) as pool:
        loads = [pool.submit(_load, url, stop, seen) for _ in range(4)]
        wait_until(lambda: seen.total() >= 20, "the load runs", process)

        shutil.copytree(staging, models / "digits" / "10")  # publish version 10, then SIGHUP
        os.kill(process.pid, signal.SIGHUP)
        assert _served_everywhere(url, ["digits/10", "digits/2"])

        broken = models / "digits" / "11"  # a new version whose decoder is damaged
        shutil.copytree(staging, broken)
        manifest = json.loads((broken / "model.json").read_text()) | {"version": "11"}
        (broken / "model.json").write_text(json.dumps(manifest))
        (broken / "decoder.onnx").write_bytes((broken / "decoder.onnx").read_bytes()[:-10])
        assert httpx.post(f"{url}/admin/reload").status_code == 401
        assert httpx.post(f"{url}/admin/reload", headers={"authorization": "Bearer nope"}).status_code == 401
        reload = httpx.post(f"{url}/admin/reload", headers={"authorization": f"Bearer {ADMIN}"}, timeout=60)
        assert reload.status_code == 200, reload.text
        body = reload.json()
        assert body["models"] == ["digits/10", "digits/2"] and body["workers_signalled"]
        assert [f["path"] for f in body["failed"]] == ["digits/11"] and "sha256" in body["failed"][0][
            "reason"
        ]
        assert _served_everywhere(url, ["digits/10", "digits/2"])
        assert httpx.get(f"{url}/readyz").status_code == 200  # what served before still serves: ready
        stop.set()
        for load in loads:
            load.result()
    statuses = {status for status, _ in seen}
    versions = {version for _, version in seen}
    assert statuses == {200}, seen
    assert versions == {"2", "10"}, seen  # the default moved to 10 while the load ran
