"""GET /models: what is served, with the manifests, the request limits, and what was refused and why."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Request

from service.api.deps import engine_of, registry_of
from service.api.errors import documented
from service.api.routing import DirectRoute
from service.api.schemas import Limits, ModelEntry, ModelsResponse

router = APIRouter(tags=["models"], route_class=DirectRoute)


@router.get(
    "/models",
    response_model=ModelsResponse,
    responses=documented(401),
    summary="Models and versions with their manifests",
)
async def models(request: Request) -> ModelsResponse:
    catalog = registry_of(request).catalog
    entries = [
        ModelEntry(
            model=model.name,
            version=model.version,
            default=catalog.is_default(model),
            manifest=model.manifest.model_dump(),
        )
        for name in catalog.names()
        for model in (catalog.models[(name, v)] for v in catalog.versions(name))
    ]
    return ModelsResponse(
        default_model=catalog.default_name,
        models=entries,
        failed=[{"path": f.path, "reason": f.reason} for f in catalog.failures],
        limits=Limits(**dataclasses.asdict(engine_of(request).limits)),  # the fields it has
    )
