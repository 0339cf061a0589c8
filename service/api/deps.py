"""What the routes read from the application: the registry, the engine, the settings, and the
request's model.

Plain functions of the request rather than FastAPI ``Depends``: FastAPI inspects every dependency
again on each request, which took 8% of a /decode request's time under load (py-spy).
"""

from __future__ import annotations

from fastapi import Request

from service.core.engine import Engine
from service.core.model import Model
from service.core.registry import Registry
from service.settings import Settings


def registry_of(request: Request) -> Registry:
    return request.app.state.registry


def engine_of(request: Request) -> Engine:
    return request.app.state.engine


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def select_model(request: Request, name: str | None, version: str | None) -> Model:
    """Resolve the request's model and record it for the request metrics."""
    model = request.app.state.registry.catalog.get(name, version)
    request.state.model, request.state.version = model.name, model.version
    return model
