"""Logging for the service: plain text or one JSON object per line (python-json-logger).

Written at once, on the thread that logs: an access line costs about 10 us of the event loop
(in-process, text). Handing records to a QueueListener thread instead was measured slower under
load (0.81-0.96x the requests/s of /decode, `make bench-compare`): the thread takes the GIL from the
event loop for longer than the write it saves.
"""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from service.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(settings: Settings) -> None:
    # what no line of ours shows, not gathered for every record (the logging HOWTO's "Optimization"):
    # the caller's file and line (a walk up the stack), thread, process and multiprocessing names;
    # 13.1 -> 10.2 us an access line, measured in-process
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
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
    # off, the access logger's level check ends each call before a record is made
    logging.getLogger("service.access").disabled = not settings.access_log
