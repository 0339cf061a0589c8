"""POST /admin/reload: rescan the model folder. Only present when VAE_ADMIN_TOKEN is set.

There is deliberately no endpoint that loads a model from a URL or a path a client names: models
come only from the folder the operator configured, and are checked against their manifests.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from service.api.deps import registry_of, settings_of
from service.api.errors import documented
from service.api.routing import DirectRoute
from service.api.schemas import ReloadResponse
from service.core.errors import Unauthorized
from service.middleware.auth import TokenCheck, bearer

router = APIRouter(tags=["admin"], route_class=DirectRoute)


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=documented(401),
    summary="Rescan the model folder and swap in what changed; broken folders keep their old version",
)
async def reload_models(request: Request) -> ReloadResponse:
    settings = settings_of(request)
    assert settings.admin_token is not None  # the router is only mounted with a token
    if not TokenCheck([settings.admin_token.get_secret_value()]).allows(bearer(request.scope["headers"])):
        raise Unauthorized("authorization", "the admin bearer token is missing or not valid")
    catalog = await registry_of(request).reload(everywhere=True)
    return ReloadResponse(
        models=[f"{n}/{v}" for n, v in sorted(catalog.models)],
        failed=[{"path": f.path, "reason": f.reason} for f in catalog.failures],
        workers_signalled=settings.workers > 1,
    )
