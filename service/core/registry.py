"""The registry: every model folder of the repository, loaded, looked up by name and version, and
reloaded while serving.

A scan builds a ``Catalog`` (the models and the folders refused). A rescan (SIGHUP or POST
/admin/reload) builds a new catalog next to the one serving: a folder whose manifest bytes are
unchanged keeps its loaded model; a folder that fails to load keeps the model loaded before, if there
was one. Only folders that failed at start-up, and still fail, make the service not ready: a broken
new version published by a reload leaves the service serving what it served before.

One assignment swaps a new catalog in. Requests already holding a model finish on it; a model no
longer served is closed once no request can still be using it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from service.core.errors import NotFound
from service.core.loading import ModelLoadError, load_model, manifest_fingerprint
from service.core.model import Model
from service.metrics import MODEL_INFO, MODELS_REFUSED, RELOADS
from service.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadFailure:
    path: str  # name/version
    reason: str
    blocking: bool = True  # failed at start-up (not ready); False when a reload found it broken


def _version_key(version: str) -> tuple[int, int, str]:
    return (1, int(version), "") if version.isdigit() else (0, 0, version)


@dataclass
class Catalog:
    """What one scan of the repository found: fixed once made."""

    default_name: str
    models: dict[tuple[str, str], Model] = field(default_factory=dict)
    failures: list[LoadFailure] = field(default_factory=list)
    loaded: bool = False  # False only for the empty catalog before the start-up scan

    @classmethod
    def scan(cls, settings: Settings, previous: Catalog | None = None) -> Catalog:
        """Load every model folder; with ``previous``, reuse what is unchanged and keep what broke."""
        catalog = cls(settings.default_model, loaded=True)
        old = previous.models if previous is not None else {}
        still_blocking = {f.path for f in previous.failures if f.blocking} if previous is not None else None
        root = settings.models_dir
        if not root.is_dir():
            catalog.failures.append(LoadFailure("models", "the model repository folder does not exist"))
            log.error("model repository %s does not exist", root)
            MODELS_REFUSED.set(1)
            return catalog
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
            if folder.name.startswith(".") or folder.parent.name.startswith("."):
                continue  # temporary folders of an export in progress
            catalog._add(folder, settings, old, still_blocking)
        MODELS_REFUSED.set(len(catalog.failures))
        return catalog

    def _add(
        self, folder: Path, settings: Settings, old: dict[tuple[str, str], Model], still_blocking: Any
    ) -> None:
        key = (folder.parent.name, folder.name)
        path = "/".join(key)
        try:
            kept = old.get(key)
            if kept is not None and kept.fingerprint == manifest_fingerprint(folder, root_of(settings)):
                self.models[key] = kept
                return
            model = load_model(folder, settings)
        except ModelLoadError as e:
            blocking = still_blocking is None or path in still_blocking
            reason = str(e)
            if key in old:
                self.models[key] = old[key]
                reason += "; the version loaded before goes on serving"
            self.failures.append(LoadFailure(path, reason, blocking=blocking))
            log.error("model %s refused: %s", path, reason)
            return
        self.models[key] = model
        MODEL_INFO.labels(model.name, model.version, str(model.latent_dim)).set(1)
        log.info("serving model %s (latent_dim %d)", path, model.latent_dim)

    def retired_by(self, successor: Catalog) -> list[Model]:
        """This catalog's models that ``successor`` no longer holds."""
        kept = {id(m) for m in successor.models.values()}
        gone = [m for m in self.models.values() if id(m) not in kept]
        for model in gone:
            if (model.name, model.version) not in successor.models:
                MODEL_INFO.labels(model.name, model.version, str(model.latent_dim)).set(0)
        return gone

    def close(self) -> None:
        for model in self.models.values():
            model.close()

    def names(self) -> list[str]:
        return sorted({n for n, _ in self.models})

    def versions(self, name: str) -> list[str]:
        return sorted((v for n, v in self.models if n == name), key=_version_key)

    @cached_property
    def _latest(self) -> dict[str, str]:
        # looked up on every request, worked out once
        return {name: self.versions(name)[-1] for name in self.names()}

    @cached_property
    def max_latent_dim(self) -> int:
        return max((m.latent_dim for m in self.models.values()), default=1)

    @property
    def ready(self) -> bool:
        """Loaded, serving something, and no folder that failed at start-up still failing."""
        return self.loaded and bool(self.models) and not any(f.blocking for f in self.failures)

    def is_default(self, model: Model) -> bool:
        return model.name == self.default_name and model.version == self._latest[model.name]

    def get(self, name: str | None = None, version: str | None = None) -> Model:
        """The requested model; the default name and its highest version when not given."""
        name = name or self.default_name
        if name not in self._latest:
            raise NotFound(
                "model", f"no model named {name!r}; available: {', '.join(self.names()) or 'none'}"
            )
        model = self.models.get((name, version or self._latest[name]))
        if model is None:
            raise NotFound(
                "version",
                f"model {name!r} has no version {version!r}; available: {', '.join(self.versions(name))}",
            )
        return model


def root_of(settings: Settings) -> Path:
    return settings.models_dir.resolve()


class Registry:
    """The catalog being served, and its reloads: ``registry.catalog`` is what requests see."""

    def __init__(self, settings: Settings, tell_siblings: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.catalog = Catalog(settings.default_model)  # empty until loaded
        self._tell_siblings = tell_siblings  # other worker processes that must reload too
        self._lock = asyncio.Lock()  # one rescan at a time; the next one sees the newest files
        self._retiring: dict[asyncio.Task[None], Model] = {}
        self._signalled: set[asyncio.Task[Any]] = set()

    async def load(self) -> None:
        self.catalog = await asyncio.to_thread(Catalog.scan, self.settings)

    def get(self, name: str | None = None, version: str | None = None) -> Model:
        return self.catalog.get(name, version)

    async def reload(self, everywhere: bool = False) -> Catalog:
        """Rescan in a thread while the old catalog serves, then swap it in; with ``everywhere``,
        the other workers of this server are told to do the same."""
        async with self._lock:
            previous = self.catalog
            catalog = await asyncio.to_thread(Catalog.scan, self.settings, previous)
            self.catalog = catalog  # requests from here on see the new models
            for model in previous.retired_by(catalog):
                task = asyncio.ensure_future(model.retire(self.settings.request_timeout_seconds))
                self._retiring[task] = model
                task.add_done_callback(lambda t: self._retiring.pop(t, None))
        outcome = "failed" if catalog.failures else "ok"
        RELOADS.labels(outcome).inc()
        served = ", ".join(f"{n}/{v}" for n, v in sorted(catalog.models)) or "none"
        log.info("models reloaded (%s): serving %s", outcome, served)
        if everywhere and self._tell_siblings is not None:
            self._tell_siblings()
        return catalog

    def on_signal(self) -> None:
        """SIGHUP handler: a reload in the background, since a signal handler cannot wait."""
        task = asyncio.ensure_future(self.reload())
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)

    def close(self) -> None:
        for task, model in list(self._retiring.items()):
            task.cancel()
            model.close()
        self.catalog.close()
