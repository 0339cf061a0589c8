"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from service.repository import LoadedModel, ModelRepository
from service.settings import Settings


def _repository(request: Request) -> ModelRepository:
    return request.app.state.repository


def _settings(request: Request) -> Settings:
    return request.app.state.settings


RepositoryDep = Annotated[ModelRepository, Depends(_repository)]
SettingsDep = Annotated[Settings, Depends(_settings)]


def select_model(
    request: Request, repository: ModelRepository, name: str | None, version: str | None
) -> LoadedModel:
    """Resolve the request's model and record it for the request metrics."""
    model = repository.get(name, version)
    request.state.model, request.state.version = model.name, model.version
    return model
