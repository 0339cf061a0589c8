"""Builds the FastAPI app: settings, logging, middleware, error handlers and routers."""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from service.api import admin, encode, generate, health, models, v2
from service.api.bodies import add_body_schemas
from service.errors import install_error_handlers
from service.logs import configure_logging
from service.middleware import RequestContext
from service.reload import Reloader
from service.repository import ModelRepository
from service.security import BearerAuth, read_tokens
from service.settings import Settings, get_settings


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's 422 body without echoing the input back (which may be huge or hostile)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings)
    tokens = read_tokens(settings)  # a token file that cannot be read stops start-up: never run open

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.repository = await run_in_threadpool(ModelRepository.scan, settings)
        # what start-up made lives as long as the process: moved out of the collector's sight, it
        # is not scanned again by every full collection (25 us per request under load, measured)
        gc.collect()
        gc.freeze()
        reloader = app.state.reloader = Reloader(app)
        loop = asyncio.get_running_loop()
        hangup = getattr(signal, "SIGHUP", None)  # not on Windows
        try:
            loop.add_signal_handler(hangup, reloader.on_signal)  # type: ignore[arg-type]
        except (TypeError, RuntimeError):  # no SIGHUP, or not the main thread (an in-process test client)
            hangup = None
        yield
        if hangup is not None:
            loop.remove_signal_handler(hangup)
        reloader.close()
        app.state.repository.close()

    app = FastAPI(
        title="vae-service",
        version="0.1.0",
        lifespan=lifespan,
        description="Encode images to latents, decode, sample and interpolate with a trained VAE.",
        # Prometheus metrics are the service's own; FastAPI's OpenTelemetry checks cost 30 us a request
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.repository = ModelRepository(default_name=settings.default_model)  # empty until loaded
    install_error_handlers(app)
    app.add_exception_handler(RequestValidationError, _validation_error)
    routers = [encode.router, generate.router, models.router, health.router, v2.router]
    if settings.metrics_port is None:  # else `python -m service` serves them on their own port
        routers.append(health.metrics_router)
    if settings.admin_token is not None:
        routers.append(admin.router)
    for router in routers:
        app.include_router(router)
    paths = {route.path for router in routers for route in router.routes}  # type: ignore[attr-defined]
    openapi = app.openapi
    app.openapi = lambda: app.openapi_schema or add_body_schemas(openapi())  # type: ignore[method-assign]
    if tokens:  # without tokens the API is open, and a request need not pass through one more layer
        app.add_middleware(BearerAuth, tokens=tokens)
    app.add_middleware(  # added last, so outermost: 401s get request ids, secure headers and metrics too
        RequestContext,
        max_body_bytes=settings.max_body_bytes,
        timeout=settings.request_timeout_seconds,
        max_in_flight=settings.max_in_flight,
        endpoints=paths,
    )
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn service.main:app` builds the app on first access, so importing this module is free
    if name == "app":
        return create_app()
    raise AttributeError(name)
