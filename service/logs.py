"""Logging for the service: plain text or one JSON object per line (python-json-logger)."""

from __future__ import annotations

import logging

from pythonjsonlogger.json import JsonFormatter

from service.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def configure_logging(settings: Settings) -> None:
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
