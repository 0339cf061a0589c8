"""GET /healthz (the process answers), /readyz (every model found at start-up is loaded), /metrics.

The probes need no token, so they say whether the service is ready and which models it serves or
refused, never why: a reason may quote a file, and it is on the authenticated GET /models.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import metrics
from service.api.deps import registry_of
from service.api.errors import documented
from service.api.routing import DirectRoute

router = APIRouter(tags=["operations"], route_class=DirectRoute)
metrics_router = APIRouter(tags=["operations"], route_class=DirectRoute)


@router.get("/healthz", summary="Liveness: 200 while the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: 200 once every model found at start-up is loaded, else 503",
    responses={503: {"description": "not ready: loading, no model, or a model refused at start-up"}},
)
async def readyz(request: Request) -> JSONResponse:
    catalog = registry_of(request).catalog
    body = {
        "status": "ready" if catalog.ready else "not ready",
        "models": [f"{n}/{v}" for n, v in sorted(catalog.models)],
        "refused": sorted(f.path for f in catalog.failures),  # the reasons: GET /models
    }
    return JSONResponse(body, status_code=200 if catalog.ready else 503)


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    responses={**documented(401), 200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
