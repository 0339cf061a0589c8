"""GET /healthz (the process answers), /readyz (every model found at start-up is loaded), /metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from service import metrics
from service.api.deps import repository_of
from service.errors import error_responses

router = APIRouter(tags=["operations"])
metrics_router = APIRouter(tags=["operations"])


@router.get("/healthz", summary="Liveness: 200 while the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: 200 once every model found at start-up is loaded, else 503",
    responses={503: {"description": "not ready: loading, no model, or a model refused at start-up"}},
)
async def readyz(request: Request) -> JSONResponse:
    repository = repository_of(request)
    served = [f"{n}/{v}" for n, v in sorted(repository.models)]
    failed = [{"path": f.path, "reason": f.reason} for f in repository.failures]
    ready = repository.ready
    body = {"status": "ready" if ready else "not ready", "models": served, "failed": failed}
    return JSONResponse(body, status_code=200 if ready else 503)


@metrics_router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    responses={**error_responses(401), 200: {"content": {"text/plain": {}}}},
)
async def prometheus_metrics() -> Response:
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
