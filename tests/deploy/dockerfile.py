"""Just enough of a Dockerfile reader to replay the repository's own Dockerfile outside Docker."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from harness import ROOT


@dataclass
class Stage:
    base: str
    name: str | None
    steps: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def args(self, instruction: str) -> list[str]:
        return [a for i, a in self.steps if i == instruction]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for line in self.args("ENV"):
            for pair in shlex.split(line):
                key, _, value = pair.partition("=")
                values[key] = value
        return values

    def exec_form(self, instruction: str) -> list[str]:
        (line,) = self.args(instruction)
        return json.loads(line)


def instructions(path: Path = ROOT / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined]


def stages(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    found: list[Stage] = []
    build_args: dict[str, str] = {}
    for instruction, args in instructions(path):
        if instruction == "ARG" and not found:
            key, _, value = args.partition("=")
            build_args[key] = value
        elif instruction == "FROM":
            words = args.split()
            base = words[0]
            for key, value in build_args.items():
                base = base.replace(f"${{{key}}}", value)
            found.append(Stage(base, words[2] if len(words) > 2 and words[1].upper() == "AS" else None))
        else:
            found[-1].steps.append((instruction, args))
    return found
