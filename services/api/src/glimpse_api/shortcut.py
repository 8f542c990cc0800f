"""The hottest requests, GET /v2/images/{image_id} (a show) and POST /v2/images (a create),
without FastAPI's routing and dependency solving, which cost them more CPU than their own work
(the database, policy and the view).

A pure ASGI layer, innermost of the application's middleware (inside EdgeMiddleware and
MetricsMiddleware, so the request id, `/v2.N` paths and the counting stay theirs): a request
whose method and path one of these routes matches runs the route's own code, `get_context`
then the endpoint, and a domain error is answered by the handler the application registered
for it, as the route's would be. Anything else, and any error without a handler (the 500 of
ServerErrorMiddleware), goes on as without this layer. The routes stay registered as they were:
the OpenAPI document, Allow headers and the route templates the metrics count are read from
them.
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
from glimpse_api.routers.images import create_image, show_image

# A request each shortcut route answers, and the endpoint that must answer it.
_PROBES: Final = (("GET", "/v2/images/probe", show_image), ("POST", "/v2/images", create_image))


def shortcut_routes(app: FastAPI) -> tuple[APIRoute, ...]:
    """The routes that answer a show and a create: for each probe, the first route in the
    router's order that matches it must be the expected endpoint's, or this layer would answer
    for another."""
    found = []
    for method, path, endpoint in _PROBES:
        probe = {"type": "http", "method": method, "path": path, "root_path": ""}
        for context in iter_route_contexts(app.routes):
            match, _ = context.matches(probe)
            if match is Match.FULL:
                route = context.original_route
                if isinstance(route, APIRoute) and route.endpoint is endpoint:
                    found.append(route)
                    break
                msg = f"{method} {path} reaches {route!r}, not {endpoint.__name__}"
                raise RuntimeError(msg)
        else:
            msg = f"{method} {path} reaches no route: the shortcut would answer for none"
            raise RuntimeError(msg)
    return tuple(found)


class Shortcut:
    def __init__(
        self, app: ASGIApp, *, routes: tuple[APIRoute, ...], handlers: Mapping[Any, Any]
    ) -> None:
        self.app = app
        self.routes = routes
        # The application's exception handlers (errors.py), as ExceptionMiddleware holds them:
        # by exception class, and by status for HTTPException.
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for route in self.routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    # What the router puts in the scope: the route (counted by its template)
                    # and the path parameters.
                    scope.update(child_scope)
                    scope["route"] = route
                    await self._answer(route, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            ctx = await get_context(request)
            response = await route.endpoint(request=request, ctx=ctx, **scope["path_params"])
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
