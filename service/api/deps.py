"""What the endpoints read from the application: its repository, its settings and the request's model.

Plain functions of the request rather than FastAPI ``Depends``: FastAPI inspects every dependency
again on each request, which took 8% of a /decode request's time under load (py-spy).
"""

from __future__ import annotations

from fastapi import Request

from service.repository import LoadedModel, ModelRepository
from service.settings import Settings


def repository_of(request: Request) -> ModelRepository:
    return request.app.state.repository


def settings_of(request: Request) -> Settings:
    return request.app.state.settings


def select_model(request: Request, name: str | None, version: str | None) -> LoadedModel:
    """Resolve the request's model and record it for the request metrics."""
    model = repository_of(request).get(name, version)
    request.state.model, request.state.version = model.name, model.version
    return model
