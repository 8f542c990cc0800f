"""GET and HEAD /healthcheck, unauthenticated, answered as oslo.middleware's Healthcheck app
answers them: 200 `OK` (HEAD: 204), or 503 with the reason while the node is disabled or
draining. That is liveness, what a balancer asks every second. GET /healthcheck/ready is
readiness: the node is healthy and its database and broker answer (200), else 503, each check
named with OK or UNREACHABLE.

The body is negotiated among text/plain (the default), text/html and application/json, in that
order on ties. Details (threads, platform, garbage collector) are never shown: the endpoint is
public, and oslo.middleware's `detailed` mode is off by default for that reason.
"""

from __future__ import annotations

import html
import json
from http import HTTPStatus
from typing import Any, Final

from fastapi import APIRouter, Request
from starlette.responses import Response

from glimpse.services.health import Health, Readiness
from glimpse_api.deps import HealthServiceDep, ReadinessServiceDep
from glimpse_api.openapi.routes import operation, string

router = APIRouter()

PLAIN: Final = "text/plain"
HTML: Final = "text/html"
JSON: Final = "application/json"
OFFERS: Final = (PLAIN, HTML, JSON)
_STATUSES: Final = (HTTPStatus.OK, HTTPStatus.SERVICE_UNAVAILABLE)


def _quality(accept: str, offer: str) -> float:
    """The q of the most specific media range in `accept` that matches `offer`."""
    kind = offer.split("/", 1)[0]
    best: tuple[int, float] = (-1, 0.0)  # (specificity, q)
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        specificity = {offer: 2, f"{kind}/*": 1, "*/*": 0}.get(media)
        if specificity is None or specificity < best[0]:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best = (specificity, quality)
    return best[1]


def negotiate(accept: str | None) -> str:
    """webob's acceptable_offers, first pick: highest q, ties in OFFERS order; text/plain when
    nothing matches (the middleware never answers 406)."""
    if not accept or not accept.strip():
        return PLAIN
    qualities = [(_quality(accept, offer), -index, offer) for index, offer in enumerate(OFFERS)]
    quality, _, offer = max(qualities)
    return offer if quality > 0 else PLAIN


def _body(health: Health, media_type: str) -> str:
    if media_type == JSON:
        return json.dumps({"detailed": False, "reasons": [health.reason]}, indent=4, sort_keys=True)
    if media_type == HTML:
        reason = html.escape(health.reason)
        return (
            "<html><head><title>Healthcheck Status</title></head><body>"
            f'<h2>Result of 1 checks:</h2><table border="1"><tr><th>Reason</th></tr>'
            f"<tr><td>{reason}</td></tr></table></body></html>"
        )
    return health.reason


def _answer(status: int) -> dict[str, Any]:
    """The document's GET answer: the reason in the negotiated media type (not Glance's error
    format: this is oslo.middleware's)."""
    reasons = {
        "type": "object",
        "properties": {
            "detailed": {"type": "boolean"},
            "reasons": {"type": "array", "items": string()},
        },
        "required": ["detailed", "reasons"],
    }
    phrase = "available" if status == HTTPStatus.OK else "disabled"
    return {
        "description": f"The node is {phrase}",
        "content": {
            PLAIN: {"schema": string()},
            HTML: {"schema": string()},
            JSON: {"schema": reasons},
        },
    }


@router.get(
    "/healthcheck",
    **operation(ok=(HTTPStatus.OK, None), extra={status: _answer(status) for status in _STATUSES}),
)
async def healthcheck(request: Request, health: HealthServiceDep) -> Response:
    result = health.check()
    media_type = negotiate(request.headers.get("accept"))
    status = 200 if result.available else 503
    return Response(_body(result, media_type), status_code=status, media_type=media_type)


@router.head(
    "/healthcheck",
    status_code=HTTPStatus.NO_CONTENT,
    **operation(
        ok=(HTTPStatus.NO_CONTENT, None),
        extra={HTTPStatus.SERVICE_UNAVAILABLE: {"description": "The node is disabled"}},
    ),
)
async def healthcheck_head(health: HealthServiceDep) -> Response:
    status = 204 if health.check().available else 503
    return Response(status_code=status, media_type=PLAIN)


def _readiness_body(result: Readiness, media_type: str) -> str:
    if media_type == JSON:
        return json.dumps({"ready": result.ready, "checks": result.checks}, sort_keys=True)
    if media_type == HTML:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(value)}</td></tr>"
            for name, value in result.checks.items()
        )
        return (
            "<html><head><title>Readiness</title></head><body>"
            f'<table border="1"><tr><th>Check</th><th>Result</th></tr>{rows}</table></body></html>'
        )
    return "".join(f"{name}: {value}\n" for name, value in result.checks.items())


def _readiness_answer(status: HTTPStatus) -> dict[str, Any]:
    checks = {
        "type": "object",
        "properties": {
            "ready": {"type": "boolean"},
            "checks": {"type": "object", "additionalProperties": string()},
        },
        "required": ["ready", "checks"],
    }
    phrase = "ready" if status == HTTPStatus.OK else "not ready"
    return {
        "description": f"The node is {phrase}: each check with OK or why not",
        "content": {
            PLAIN: {"schema": string()},
            HTML: {"schema": string()},
            JSON: {"schema": checks},
        },
    }


@router.get(
    "/healthcheck/ready",
    **operation(
        ok=(HTTPStatus.OK, None),
        extra={status: _readiness_answer(status) for status in _STATUSES},
    ),
)
async def readiness(request: Request, service: ReadinessServiceDep) -> Response:
    result = await service.check()
    media_type = negotiate(request.headers.get("accept"))
    status = 200 if result.ready else 503
    return Response(_readiness_body(result, media_type), status_code=status, media_type=media_type)
