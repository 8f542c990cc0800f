"""The ASGI application: create_app(settings) with a lifespan that owns the runtime."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Final

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from glimpse.config import ConfigError, Settings, load_settings
from glimpse.logs import setup_logging
from glimpse.services.housekeeping import Housekeeping
from glimpse_api import metrics
from glimpse_api.deps import ApiRuntime
from glimpse_api.drain import drain_on_sigterm
from glimpse_api.errors import add_exception_handlers
from glimpse_api.identity import refuse_unsafe_bind
from glimpse_api.middleware import EdgeMiddleware
from glimpse_api.routers import (
    cache,
    discovery,
    healthcheck,
    image_actions,
    image_data,
    images,
    imports,
    locations,
    members,
    metadef_namespaces,
    metadef_objects,
    metadef_schemas,
    metadef_tags,
    openapi,
    schemas,
    stores,
    tags,
    tasks,
    versions,
)
from glimpse_api.shortcut import Shortcut, shortcut_routes

log = logging.getLogger(__name__)
# FastAPI's own OpenTelemetry tracing, metrics and logs, off: Glimpse configures no provider,
# and on with none, every request still asked OpenTelemetry for three providers to find that
# out (some 2 % of a show's CPU).
_NO_TELEMETRY: Final[TelemetryConfig] = {"tracing": False, "metrics": False, "logs": False}
_MAINTENANCE_GRACE = 10.0  # seconds a cache pass may take to end at shutdown


def create_app(
    settings: Settings, *, drain_on_signal: bool = False, freeze_on_start: bool = False
) -> FastAPI:
    """The application for `settings`; ConfigError when they are unsafe to serve (noauth
    on a public address), whoever starts it. `drain_on_signal`: the server is glimpse-api's,
    whose SIGTERM starts `[healthcheck] drain_delay` (glimpse_api.drain). `freeze_on_start`:
    the process serves this application alone until it exits (glimpse-api's), so what its
    start built is frozen out of the garbage collector's reach (gc.freeze): full collections,
    which requests trigger, stop walking the whole application every time."""
    refuse_unsafe_bind(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            if drain_on_signal:
                await stack.enter_async_context(drain_on_sigterm(settings.healthcheck.drain_delay))
            await stack.enter_async_context(_runtime(app, settings))
            if freeze_on_start:
                gc.freeze()
            yield

    app = FastAPI(
        title="Glimpse Images API",
        version="2",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # served by routers/openapi.py, with what FastAPI cannot see
        # No redirect from `/v2/images/` to `/v2/images`: Glance answers 404 for a path with a
        # trailing slash (an empty image id), never the list or a 405 after a redirect.
        redirect_slashes=False,
        telemetry=_NO_TELEMETRY,
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
        metadef_schemas,
        metadef_namespaces,
        metadef_objects,
        metadef_tags,
        cache,
        openapi,
    ):
        app.include_router(module.router)
    app.include_router(metrics.router)
    # Innermost: a show and a create skip the router and dependency solving
    # (glimpse_api.shortcut).
    app.add_middleware(Shortcut, routes=shortcut_routes(app), handlers=app.exception_handlers)
    # Inside the edge: it reads the route the router (or the shortcut) matched from the scope
    # it was given.
    app.add_middleware(metrics.MetricsMiddleware)
    app.add_middleware(EdgeMiddleware, keepalive=settings.http_keepalive)
    return app


@asynccontextmanager
async def _runtime(app: FastAPI, settings: Settings) -> AsyncIterator[None]:
    """The process's ApiRuntime on app.state while the application runs."""
    runtime = ApiRuntime.build(settings)
    app.state.runtime = runtime
    # Leftovers of a previous life are swept at start, as Glance does, without delaying it.
    # The job publisher connects meanwhile, so this process's first import does not wait for
    # it (a broker that is down then is only logged: a send connects when it comes).
    background = [
        asyncio.create_task(_sweep(runtime)),
        asyncio.create_task(runtime.publisher.warm()),
    ]
    stopping = asyncio.Event()
    maintenance = None
    if runtime.cache is not None:
        maintenance = asyncio.create_task(_maintain_cache(runtime, stopping))
    try:
        async with _following_notices(runtime, stopping):
            yield
    finally:
        if maintenance is not None:
            # A pass in progress may finish (a cancelled query can leave its connection
            # broken); one that takes longer is cancelled.
            stopping.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(maintenance), _MAINTENANCE_GRACE)
            background.append(maintenance)
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await runtime.aclose()


async def _sweep(runtime: ApiRuntime) -> None:
    try:
        removed = await Housekeeping(runtime.settings, runtime.database, runtime.stores).run()
    except Exception:
        log.exception("start-up sweep of leftover files failed")
        return
    if removed:
        log.info("start-up sweep removed %d leftover files", removed)


async def _maintain_cache(runtime: ApiRuntime, stopping: asyncio.Event) -> None:
    """The cache's schedule inside the API (no cron, unlike Glance): every
    cache_prefetcher_interval, clean, prefetch what is queued for this node, prune."""
    cache = runtime.cache
    assert cache is not None  # noqa: S101 -- started only with a cache
    while not stopping.is_set():
        try:
            await cache.maintain(runtime.image_data.load_for_prefetch, stopping)
        except Exception:
            log.exception("image cache maintenance pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), runtime.settings.cache_prefetcher_interval)


@asynccontextmanager
async def _following_notices(runtime: ApiRuntime, stopping: asyncio.Event) -> AsyncIterator[None]:
    """Other nodes' notices (images deleted or deactivated there) run this node's share of the
    maintenance pass for that image at once, instead of at the next pass."""
    cache = runtime.cache
    if cache is None:
        yield
        return

    async def react(image_id: str | None) -> None:
        await cache.catch_up(image_id, runtime.image_data.load_for_prefetch, stopping)

    async with cache.notices.following(react, _MAINTENANCE_GRACE):
        try:
            yield
        finally:
            stopping.set()  # before the reactions' grace: a prefetch stops between images


def app_from_environment() -> FastAPI:
    """Factory for uvicorn (`glimpse-api`'s worker processes, or `uvicorn
    glimpse_api.app:app_from_environment --factory`): settings from GLIMPSE_CONFIG and the
    environment. A configuration it refuses stops the process with the reason."""
    setup_logging()  # a worker process started by uvicorn has not configured logging yet
    try:
        settings = load_settings()
        setup_logging(debug=settings.debug, json=settings.use_json)
        return create_app(settings, drain_on_signal=True, freeze_on_start=True)
    except ConfigError as exc:
        log.critical("glimpse-api: %s", exc)
        sys.exit(2)
