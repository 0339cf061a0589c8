"""The pages people open in a browser: the web page at / (draw, sample, interpolate, explore the
latent space; service/static/ui/), the interactive API documentation at /docs, and the static files
they load, served by the service itself (no CDN: the pages work offline and under a strict
Content-Security-Policy, see ``service.middleware.context``)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

from service.api.routing import DirectRoute

STATIC = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(tags=["pages"], include_in_schema=False, route_class=DirectRoute)


@router.get("/")
async def home() -> FileResponse:
    return FileResponse(STATIC / "ui" / "index.html", media_type="text/html")


@router.get("/docs")
async def docs() -> FileResponse:
    return FileResponse(STATIC / "docs.html", media_type="text/html")


def static_files() -> StaticFiles:
    """Everything under service/static/, at /static/ (no directory listings, no symlinks out)."""
    return StaticFiles(directory=STATIC, follow_symlink=False)
