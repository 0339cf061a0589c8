"""Reloading the model repository while serving, on SIGHUP or POST /admin/reload.

The new repository is built in a thread while the old one serves; then one assignment swaps it in.
Requests already holding a model finish on it; a model no longer served is closed once no request
can still be using it. Nothing is dropped.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool

from service.metrics import RELOADS
from service.repository import LoadedModel, ModelRepository

log = logging.getLogger(__name__)


class Reloader:
    def __init__(self, app: FastAPI) -> None:
        self._app = app
        self._lock = asyncio.Lock()  # one rescan at a time; the next one sees the newest files
        self._retiring: dict[asyncio.Task[None], LoadedModel] = {}
        self._signalled: set[asyncio.Task[Any]] = set()

    async def reload(self) -> ModelRepository:
        async with self._lock:
            state = self._app.state
            previous: ModelRepository = state.repository
            repository = await run_in_threadpool(ModelRepository.scan, state.settings, previous)
            state.repository = repository  # requests from here on see the new models
            for model in previous.retired_by(repository):
                task = asyncio.ensure_future(model.retire(state.settings.request_timeout_seconds))
                self._retiring[task] = model
                task.add_done_callback(lambda t: self._retiring.pop(t, None))
        outcome = "failed" if repository.failures else "ok"
        RELOADS.labels(outcome).inc()
        log.info(
            "models reloaded (%s): serving %s",
            outcome,
            ", ".join(f"{n}/{v}" for n, v in sorted(repository.models)) or "none",
        )
        return repository

    def on_signal(self) -> None:
        """SIGHUP handler: a reload in the background, since a signal handler cannot wait."""
        task = asyncio.ensure_future(self.reload())
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)

    def close(self) -> None:
        """At shutdown: close the models still waiting to retire."""
        for task, model in list(self._retiring.items()):
            task.cancel()
            model.close()
