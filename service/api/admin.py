"""POST /admin/reload: rescan the model folder. Only present when VAE_ADMIN_TOKEN is set.

There is deliberately no endpoint that loads a model from a URL or a path a client names: models
come only from the folder the operator configured, and are checked against their manifests.
"""

from __future__ import annotations

import os
import signal

from fastapi import APIRouter, Request

from service.api.deps import settings_of
from service.errors import Unauthorized, error_responses
from service.schemas import ReloadResponse
from service.security import TokenCheck, bearer

router = APIRouter(tags=["admin"])


@router.post(
    "/admin/reload",
    response_model=ReloadResponse,
    responses=error_responses(401),
    summary="Rescan the model folder and swap in what changed; broken folders keep their old version",
)
async def reload_models(request: Request) -> ReloadResponse:
    settings = settings_of(request)
    assert settings.admin_token is not None  # the router is only mounted with a token
    check = TokenCheck([settings.admin_token.get_secret_value()])
    if not check.allows(bearer(dict(request.scope["headers"]))):
        raise Unauthorized("authorization: the admin bearer token is missing or not valid")
    repository = await request.app.state.reloader.reload()
    if settings.workers > 1:
        # the supervisor of `python -m service` passes SIGHUP on to every worker, this one included
        # (which then finds nothing changed)
        os.kill(os.getppid(), signal.SIGHUP)
    return ReloadResponse(
        models=[f"{n}/{v}" for n, v in sorted(repository.models)],
        failed=[{"path": f.path, "reason": f.reason} for f in repository.failures],
        workers_signalled=settings.workers > 1,
    )
