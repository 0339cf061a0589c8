"""GET /models: what is served, with the manifests, and what was refused and why."""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import repository_of, settings_of
from service.errors import error_responses
from service.schemas import Limits, ModelEntry, ModelsResponse

router = APIRouter(tags=["models"])


@router.get(
    "/models",
    response_model=ModelsResponse,
    responses=error_responses(401),
    summary="Models and versions with their manifests",
)
async def models(request: Request) -> ModelsResponse:
    repository = repository_of(request)
    entries = []
    for name in repository.names():
        versions = repository.versions(name)
        for version in versions:
            manifest = repository.models[(name, version)].manifest
            default = name == repository.default_name and version == versions[-1]
            entries.append(
                ModelEntry(model=name, version=version, default=default, manifest=manifest.model_dump())
            )
    failed = [{"path": f.path, "reason": f.reason} for f in repository.failures]
    settings = settings_of(request)
    limits = Limits(
        max_images=settings.max_images,
        max_n=settings.max_n,
        max_steps=settings.max_steps,
        max_body_bytes=settings.max_body_bytes,
        max_image_bytes=settings.max_image_bytes,
    )
    return ModelsResponse(default_model=repository.default_name, models=entries, failed=failed, limits=limits)
