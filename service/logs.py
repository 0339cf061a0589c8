"""Logging for the service: plain text or one JSON object per line (python-json-logger).

The access log, one line for every request, is the one hot path: ``AccessLog`` formats its line
itself and writes it to the log's stream under the handler's lock, in the same format as every
other line, without a LogRecord and the handler chain (see its docstring for the figures). Handing
records to a QueueListener thread instead was measured slower under load (0.81-0.96x the
requests/s of /decode, `make bench-compare`): the thread takes the GIL from the event loop for
longer than the write it saves.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from pythonjsonlogger.json import JsonFormatter

from service.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class AccessLog:
    """Writes ``service.access`` lines as the configured formatter would, at a third of the cost:
    13.1 -> 3.3 us a line in-process through logging as configured here (JSON 19.4 -> 4.8; 10.2 and
    17.0 with logging's optional record fields off, a global switch no longer needed); under load
    the access log took 24% of the requests/s of /decode of 1 latent at 32 connections through
    logging, 8% this way (`make bench-peers`, log on against off).

    Lines written while the event loop runs are gathered and written once, at the end of the loop's
    turn (``call_soon``): one write and flush for all the requests a turn finished, instead of one
    each. They reach the stream within the turn, before the loop waits for anything else."""

    def __init__(self, handler: logging.StreamHandler, json_lines: bool) -> None:
        self.handler = handler
        self.json_lines = json_lines
        self._second = -1
        self._stamp = ""
        self._pending: list[str] = []  # lines of this turn of the event loop, not yet written

    def _time(self) -> str:
        # logging's asctime ("2026-11-27 21:13:16,123", local time), its strftime done once a second
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        return f"{self._stamp},{int((now - second) * 1000):03d}"

    def __call__(
        self, client: str, method: str, path: str, status: int, seconds: float, request_id: str
    ) -> None:
        ms = seconds * 1000
        message = f'{client} "{method} {path}" {status} {ms:.1f}ms request_id={request_id}'
        if self.json_lines:
            fields: dict[str, object] = {
                "time": self._time(),
                "level": "INFO",
                "logger": ACCESS,
                "message": message,
            }
            fields |= {"request_id": request_id, "method": method, "path": path, "status": status}
            line = orjson.dumps(fields | {"duration_ms": round(ms, 3), "client": client}).decode()
        else:
            line = f"{self._time()} INFO {ACCESS} {message}"
        self._pending.append(line)
        if len(self._pending) > 1:
            return
        try:
            asyncio.get_running_loop().call_soon(self.flush)
        except RuntimeError:  # no event loop: written at once
            self.flush()

    def flush(self) -> None:
        lines, self._pending = self._pending, []
        if lines:
            with self.handler.lock:  # type: ignore[union-attr]
                self.handler.stream.write("\n".join(lines) + "\n")
                self.handler.stream.flush()


ACCESS = "service.access"


def configure_logging(settings: Settings) -> AccessLog | None:
    """Logging as ``settings`` say; the access log's writer, or None when it is off."""
    handler = logging.StreamHandler()
    if settings.log_format == "json":
        handler.setFormatter(
            JsonFormatter(
                TEXT_FORMAT, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}
            )
        )
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.log_level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []  # one handler, at the root, for everything
        logging.getLogger(name).propagate = True
    # the service writes its own access log (with the request id); uvicorn's would say it twice
    logging.getLogger("uvicorn.access").handlers = []
    logging.getLogger("uvicorn.access").propagate = False
    return AccessLog(handler, settings.log_format == "json") if settings.access_log else None
