"""The client is its own installable unit: what it imports is what its package declares."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import requires

from harness import ROOT

# import names whose distribution is called otherwise
DISTRIBUTION = {"PIL": "pillow"}


def _imported_packages() -> set[str]:
    names = set()
    for path in (ROOT / "client" / "vae_client").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"vae_client", "__future__"}


def _name(requirement: str) -> str:
    for stop in "<>=!~;[ ":
        requirement = requirement.split(stop, 1)[0]
    return requirement.lower()


def test_every_import_of_the_client_is_a_declared_dependency() -> None:
    declared = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]["dependencies"]
    needed = {DISTRIBUTION.get(name, name).lower() for name in _imported_packages()}
    assert needed == {_name(r) for r in declared}, (needed, declared)
    assert needed <= {_name(r) for r in requires("vae-client") or []}  # and the installed one agrees


def test_the_client_needs_nothing_of_the_service() -> None:
    assert not _imported_packages() & {"common", "service", "training", "fastapi", "onnxruntime", "torch"}
