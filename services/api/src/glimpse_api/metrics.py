"""The API's Prometheus metrics: a pure ASGI middleware that counts every request by route
template (never by raw path: the label set stays bounded whatever clients send), and
GET /metrics, answered only to `[metrics] allowed_networks`."""

from __future__ import annotations

import ipaddress
import re
import time
from http import HTTPStatus
from typing import Final

from fastapi import APIRouter, Request
from prometheus_client import Counter, Histogram
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glimpse import metrics
from glimpse_api.deps import SettingsDep
from glimpse_api.errors import error_response
from glimpse_api.openapi.routes import operation, string

router = APIRouter()

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED: Final = "unmatched"
_UPLOAD: Final = re.compile(r"^/v2/images/[^/]+/(?:file|stage)$")


class MetricsMiddleware:
    """Counts each request once its response has ended (or failed: a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"] if scope["method"] in METHODS else "other"
        uploading = method == "PUT" and _UPLOAD.match(scope["path"]) is not None
        counts = {"status": 500, "received": 0, "sent": 0}

        async def counting_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                counts["received"] += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                counts["status"] = message["status"]
            elif message["type"] == "http.response.body":
                counts["sent"] += len(message.get("body", b""))
            await send(message)

        if uploading:
            metrics.UPLOADS_IN_FLIGHT.inc()
        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            if uploading:
                metrics.UPLOADS_IN_FLIGHT.dec()
            _count(scope, method, counts, time.perf_counter() - started)


# The labelled series of each (method, route, status): labels() takes a lock and checks its
# arguments on every call; the set is bounded by the routes, as the series themselves are.
_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}


def _series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    key = (method, route, status)
    series = _SERIES.get(key)
    if series is None:
        series = _SERIES[key] = (
            metrics.REQUESTS.labels(method, route, str(status)),
            metrics.REQUEST_SECONDS.labels(method, route),
        )
    return series


# The byte counters of each route, for the same reason; a series appears once it counts.
_BYTES: dict[tuple[Counter, str], Counter] = {}


def _bytes_series(counter: Counter, route: str) -> Counter:
    series = _BYTES.get((counter, route))
    if series is None:
        series = _BYTES[counter, route] = counter.labels(route)
    return series


def _count(scope: Scope, method: str, counts: dict[str, int], seconds: float) -> None:
    # The router puts the matched route in this scope (the middleware is innermost).
    route = getattr(scope.get("route"), "path", None) or UNMATCHED
    requests, durations = _series(method, route, counts["status"])
    requests.inc()
    durations.observe(seconds)
    if counts["received"]:
        _bytes_series(metrics.BODY_BYTES_RECEIVED, route).inc(counts["received"])
    if counts["sent"]:
        _bytes_series(metrics.BODY_BYTES_SENT, route).inc(counts["sent"])


def _allowed(
    request: Request, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> bool:
    if request.client is None:
        return False
    try:
        peer = ipaddress.ip_address(request.client.host)
    except ValueError:
        return False
    return any(peer in network for network in networks)


@router.get(
    "/metrics",
    **operation(
        ok=(HTTPStatus.OK, None),
        errors=(HTTPStatus.NOT_FOUND,),
        extra={
            HTTPStatus.OK: {
                "description": "Prometheus' text format",
                "content": {"text/plain": {"schema": string()}},
            }
        },
    ),
)
async def metrics_endpoint(request: Request, settings: SettingsDep) -> Response:
    options = settings.metrics
    if not options.enabled or not _allowed(request, options.allowed_networks):
        accept = request.headers.get("accept", "")
        return error_response(
            HTTPStatus.NOT_FOUND, "The resource could not be found.", accept=accept
        )
    body, content_type = metrics.render()
    return Response(body, media_type=content_type)
