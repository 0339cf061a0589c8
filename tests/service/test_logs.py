"""The access log's own writer says what logging's formatter would have said, in either format, and
writes the lines of one turn of the event loop together."""

from __future__ import annotations

import asyncio
import json
import logging
import re

import pytest

from service.logs import configure_logging
from service.settings import Settings

# configure_logging's handler writes to sys.stderr, which capsys reads
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"


def test_text_lines_are_logging_s_lines(capsys: pytest.CaptureFixture[str]) -> None:
    access = configure_logging(Settings(log_format="text"))
    assert access is not None
    access("10.0.0.7", "POST", "/decode", 200, 0.00125, "req-1")
    message = '10.0.0.7 "POST /decode" 200 1.2ms request_id=req-1'
    logging.getLogger("service.access").info(message)  # the same line through logging itself
    ours, theirs = capsys.readouterr().err.splitlines()
    assert re.fullmatch(f"{STAMP} INFO service.access {re.escape(message)}", ours)
    assert ours[23:] == theirs[23:]  # all but the milliseconds between the two calls


def test_json_lines_carry_logging_s_keys_and_the_request_fields(capsys: pytest.CaptureFixture[str]) -> None:
    access = configure_logging(Settings(log_format="json"))
    assert access is not None
    access("10.0.0.7", "GET", "/models", 404, 0.0005, "req-2")
    logging.getLogger("service.access").info("x")
    ours, theirs = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert {"time", "level", "logger", "message"} <= set(theirs)
    assert re.fullmatch(STAMP, ours["time"])
    assert ours | {"time": 0} == {
        "time": 0,
        "level": "INFO",
        "logger": "service.access",
        "message": '10.0.0.7 "GET /models" 404 0.5ms request_id=req-2',
        "request_id": "req-2",
        "method": "GET",
        "path": "/models",
        "status": 404,
        "duration_ms": 0.5,
        "client": "10.0.0.7",
    }


def test_no_writer_when_the_access_log_is_off() -> None:
    assert configure_logging(Settings(access_log=False)) is None


def test_lines_of_one_turn_of_the_event_loop_are_written_together(capsys: pytest.CaptureFixture[str]) -> None:
    access = configure_logging(Settings(log_format="text"))
    assert access is not None

    async def two_requests_answered_in_one_turn() -> tuple[str, list[str]]:
        access("10.0.0.7", "POST", "/decode", 200, 0.001, "req-1")
        access("10.0.0.8", "POST", "/decode", 200, 0.001, "req-2")
        before = capsys.readouterr().err
        await asyncio.sleep(0)  # the turn ends: its lines are written
        return before, capsys.readouterr().err.splitlines()

    before, after = asyncio.run(two_requests_answered_in_one_turn())
    assert before == ""
    assert [line.rsplit("request_id=", 1)[1] for line in after] == ["req-1", "req-2"]
