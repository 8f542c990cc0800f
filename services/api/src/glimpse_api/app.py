"""The ASGI application: create_app(settings) with a lifespan that owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from glimpse.config import Settings, load_settings
from glimpse.logs import setup_logging
from glimpse.services.housekeeping import Housekeeping
from glimpse_api.deps import Runtime
from glimpse_api.errors import add_exception_handlers
from glimpse_api.middleware import RequestIdMiddleware, VersionPrefixMiddleware
from glimpse_api.routers import (
    discovery,
    healthcheck,
    image_actions,
    image_data,
    images,
    imports,
    locations,
    members,
    schemas,
    stores,
    tags,
    tasks,
    versions,
)

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = Runtime.build(settings)
        app.state.runtime = runtime
        # Leftovers of a previous life are swept at start, as Glance does, without delaying it.
        sweep = asyncio.create_task(_sweep(runtime))
        try:
            yield
        finally:
            sweep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweep
            await runtime.aclose()

    app = FastAPI(
        title="Glimpse Images API",
        version="2",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    add_exception_handlers(app)
    for module in (
        healthcheck,
        versions,
        images,
        image_data,
        image_actions,
        tags,
        members,
        schemas,
        discovery,
        stores,
        locations,
        tasks,
        imports,
    ):
        app.include_router(module.router)
    app.add_middleware(VersionPrefixMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app


async def _sweep(runtime: Runtime) -> None:
    try:
        removed = await Housekeeping(runtime.settings, runtime.database, runtime.stores).run()
    except Exception:
        log.exception("start-up sweep of leftover files failed")
        return
    if removed:
        log.info("start-up sweep removed %d leftover files", removed)


def app_from_environment() -> FastAPI:
    """Factory for uvicorn worker processes: settings from GLIMPSE_CONFIG and the environment."""
    setup_logging()  # a worker process started by uvicorn has not configured logging yet
    return create_app(load_settings())
