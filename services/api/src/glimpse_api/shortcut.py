"""GET /v2/images/{image_id}, the hottest request, without FastAPI's routing and dependency
solving, which cost it more CPU than its own work (the database read, policy and the view).

A pure ASGI layer, innermost of the application's middleware (inside EdgeMiddleware and
MetricsMiddleware, so the request id, `/v2.N` paths and the counting stay theirs): a GET whose
path the show route matches runs the route's own code, `get_context` then `show_image`, and a
domain error is answered by the handler the application registered for it, as the route's
would be. Anything else, and any error without a handler (the 500 of ServerErrorMiddleware),
goes on as without this layer. The route stays registered as it was: the OpenAPI document,
Allow headers and the route template the metrics count are read from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from glimpse_api.deps import get_context
from glimpse_api.routers.images import show_image

_PROBE: Final = "/v2/images/probe"


def show_route(app: FastAPI) -> APIRoute:
    """The route that answers GET /v2/images/{image_id}: the first route, in the router's order,
    that matches such a request must be show_image, or this layer would answer for another."""
    probe = {"type": "http", "method": "GET", "path": _PROBE, "root_path": ""}
    for context in iter_route_contexts(app.routes):
        match, _ = context.matches(probe)
        if match is Match.FULL:
            route = context.original_route
            if isinstance(route, APIRoute) and route.endpoint is show_image:
                return route
            break
    msg = f"GET {_PROBE} does not reach show_image first: the shortcut would shadow a route"
    raise RuntimeError(msg)


class ShowShortcut:
    def __init__(self, app: ASGIApp, *, route: APIRoute, handlers: Mapping[Any, Any]) -> None:
        self.app = app
        self.route = route
        # The application's exception handlers (errors.py), as ExceptionMiddleware holds them:
        # by exception class, and by status for HTTPException.
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match, child_scope = self.route.matches(scope)
            if match is Match.FULL:
                # What the router puts in the scope: the route (counted by its template) and
                # the path parameters.
                scope.update(child_scope)
                scope["route"] = self.route
                await self._show(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _show(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            ctx = await get_context(request)
            response = await show_image(scope["path_params"]["image_id"], request, ctx)
        except Exception as exc:
            handler = self._handler(exc)
            if handler is None:
                raise  # as from the route: ServerErrorMiddleware's 500
            response = await handler(request, exc)
            exc.__traceback__ = None  # as Starlette drops it: an instance may be raised again
        await response(scope, receive, send)

    def _handler(self, exc: Exception) -> Any:  # noqa: ANN401 -- Starlette's handler type
        """The handler ExceptionMiddleware would pick: by status for an HTTPException, else
        by the nearest class; Exception's belongs to ServerErrorMiddleware, not to it."""
        if isinstance(exc, HTTPException) and exc.status_code in self.handlers:
            return self.handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in self.handlers:
                return self.handlers[cls]
        return None
