"""Builds the app: settings, logging, the core, the middleware layers and one router per resource."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from service.api import admin, encode, generate, health, models, pages, v2
from service.api.errors import install_error_handlers
from service.core.engine import Engine, Limits
from service.core.registry import Registry
from service.logs import configure_logging
from service.middleware.admission import Admission
from service.middleware.auth import BearerAuth, read_tokens
from service.middleware.context import RequestContext
from service.middleware.observation import Observation
from service.settings import Settings, get_settings


def _tell_supervisor() -> None:
    # the supervisor of `python -m service` passes SIGHUP on to every worker, this one included
    # (which then finds nothing changed)
    os.kill(os.getppid(), signal.SIGHUP)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    access = configure_logging(settings)
    tokens = read_tokens(settings)  # a token file that cannot be read stops start-up: never run open
    registry = Registry(settings, tell_siblings=_tell_supervisor if settings.workers > 1 else None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await registry.load()
        # what start-up made lives as long as the process: moved out of the collector's sight, it
        # is not scanned again by every full collection (25 us per request under load, measured)
        gc.collect()
        gc.freeze()
        loop = asyncio.get_running_loop()
        try:
            loop.add_signal_handler(signal.SIGHUP, registry.on_signal)
            hangup = True
        except (AttributeError, RuntimeError):  # no SIGHUP (Windows), or not the main thread (a test client)
            hangup = False
        yield
        if hangup:
            loop.remove_signal_handler(signal.SIGHUP)
        registry.close()
        if access is not None:
            access.flush()  # the lines of the loop's last turn

    app = FastAPI(
        title="vae-service",
        version="0.1.0",
        lifespan=lifespan,
        description="Encode images to latents, decode, sample and interpolate with a trained VAE.",
        # Prometheus metrics are the service's own; FastAPI's OpenTelemetry checks cost 30 us a request
        telemetry={"tracing": False, "metrics": False, "logs": False},
        redirect_slashes=False,  # a redirect would echo the Host header back; paths are exact
        docs_url=None,  # /docs is the service's own page, with Swagger UI served locally
        redoc_url=None,
    )
    app.state.settings, app.state.registry, app.state.engine = (
        settings,
        registry,
        Engine(Limits.of(settings), settings.decode_threads),
    )
    install_error_handlers(app)
    routers = [encode.router, generate.router, models.router, health.router, v2.router, pages.router]
    if settings.metrics_port is None:  # else `python -m service` serves them on their own port
        routers.append(health.metrics_router)
    if settings.admin_token is not None:
        routers.append(admin.router)
    # The routes themselves rather than the routers: FastAPI matches an included router's routes
    # through a layer of its own (20 us of a /decode request in-process, measured). A request is
    # matched against the routes in turn, 2-3 us each: inference (every POST) is tried first.
    routes = [route for router in routers for route in router.routes]
    app.router.routes.extend(sorted(routes, key=lambda route: "POST" not in route.methods))  # type: ignore[attr-defined]
    app.mount("/static", pages.static_files(), name="static")
    endpoints = {route.path for route in routes}  # type: ignore[attr-defined]
    # the last added is the outermost: 401s and refusals get request ids, headers and metrics too
    if tokens:  # without tokens the API is open, and a request need not pass one more layer
        app.add_middleware(BearerAuth, tokens=tokens)
    app.add_middleware(
        Admission,
        max_body_bytes=settings.max_body_bytes,
        max_body_memory_bytes=settings.max_body_memory_bytes,
        timeout=settings.request_timeout_seconds,
        max_in_flight=settings.max_in_flight,
        endpoints=endpoints,
    )
    app.add_middleware(Observation, endpoints=endpoints, access=access)
    app.add_middleware(RequestContext)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.main:app` builds the app on first access, so importing this module is free
    if name == "app":
        return create_app()
    raise AttributeError(name)
