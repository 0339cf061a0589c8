"""The serving side never imports torch, so the serving image stays slim; the core never imports the
web framework, so it is used and tested without HTTP."""

from __future__ import annotations

import subprocess
import sys

from harness import ROOT

PROGRAM = """
import sys
import service.__main__, service.main, service.api.encode, service.api.generate
service.main.create_app()
loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.") or m.startswith("training"))
print(loaded)
"""


def test_the_service_import_graph_has_no_torch() -> None:
    result = subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


CORE = """
import sys, pkgutil, importlib, service.core
for module in pkgutil.iter_modules(service.core.__path__):
    importlib.import_module(f"service.core.{module.name}")
web = {"fastapi", "starlette", "uvicorn", "torch", "training"}
print(sorted({m.split(".")[0] for m in sys.modules} & web))
"""


def test_the_core_imports_no_web_framework() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CORE], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
