"""Every hostile input of reliability/hostile.py against a real server: each gets its clear 4xx, the
next valid request is answered correctly, and the server's memory stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.ports import free_port
from harness.probe import usage
from harness.processes import service
from harness.tiny_model import tiny_repository
from reliability.hostile import CASES, SLOW_TIMEOUT, MiB, run_cases, valid_decode

pytestmark = pytest.mark.server  # starts real processes

LATENT_DIM = 4  # of the tiny digits model
# the most the peak RSS may grow over all cases: 16 MiB bodies, and a 16-megapixel RGBA PNG, which
# holds about 130 MiB while it is decoded and reduced (Pillow premultiplies alpha at full size)
MEMORY_BOUND_MIB = 160


def test_hostile_inputs_get_a_clear_4xx_and_leave_the_server_well(tmp_path: Path) -> None:
    port = free_port()
    settings = {
        "default_model": "digits",
        "request_timeout_seconds": str(SLOW_TIMEOUT),
        "access_log": "false",
    }
    models = tiny_repository(tmp_path / "models", mnist=True)  # 28x28, uploads normalized as MNIST's
    with service(models, tmp_path, port, **settings) as process:
        for _ in range(20):
            assert valid_decode(port, LATENT_DIM).status == 200
        before = usage(process.pid)
        outcomes = run_cases(port, process.pid, "digits", LATENT_DIM)
        after = usage(process.pid)
    for o in outcomes:
        assert (o.answer.status, o.case.says in o.answer.detail()) == (o.case.status, True), (
            o.case.name,
            o.answer.status,
            o.answer.detail(),
        )
        assert o.answer.headers.get("content-type") == "application/json", o.case.name
        assert o.next_ok, f"the valid request after {o.case.name!r} failed"
    assert (after.peak - before.rss) / MiB < MEMORY_BOUND_MIB, (before, after)
    assert len(outcomes) == len(CASES) >= 35
