"""The one table that maps domain errors to HTTP statuses, and Glance's error body."""

from __future__ import annotations

import html
import logging
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from glimpse.domain import errors
from glimpse.stores.base import StoreError
from glimpse.stores.checked import failure_for

log = logging.getLogger(__name__)

STATUS_BY_ERROR: Final[tuple[tuple[type[errors.GlimpseError], HTTPStatus], ...]] = (
    # Before InvalidInput, its base: refused image data is 415, as Glance answers an upload.
    (errors.InvalidImageData, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (errors.InvalidInput, HTTPStatus.BAD_REQUEST),
    (errors.NotAuthenticated, HTTPStatus.UNAUTHORIZED),
    (errors.Forbidden, HTTPStatus.FORBIDDEN),
    (errors.NotFound, HTTPStatus.NOT_FOUND),
    (errors.MethodNotAllowed, HTTPStatus.METHOD_NOT_ALLOWED),
    (errors.Conflict, HTTPStatus.CONFLICT),
    (errors.Gone, HTTPStatus.GONE),
    (errors.LimitExceeded, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (errors.UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (errors.RangeNotSatisfiable, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE),
    (errors.StoreUnavailable, HTTPStatus.SERVICE_UNAVAILABLE),
    (errors.IdentityUnavailable, HTTPStatus.SERVICE_UNAVAILABLE),
    (errors.DatabaseUnavailable, HTTPStatus.SERVICE_UNAVAILABLE),
)
# Seconds a client is asked to wait when the database is unavailable.
DATABASE_RETRY_AFTER: Final = 10


def status_for(error: errors.GlimpseError) -> HTTPStatus:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def _challenge(request: Request) -> str:
    """keystonemiddleware's 401 header: where to get a token (empty without Keystone)."""
    runtime = getattr(request.app.state, "runtime", None)
    uri = runtime.authenticator.www_authenticate_uri if runtime is not None else ""
    return f'Keystone uri="{uri}"'


def _accept(request: Request) -> str:
    return request.headers.get("accept", "")


def _wants(accept: str) -> str:
    """Pick json, html or plain as webob does for Glance: by Accept, ties going to HTML."""
    best: dict[str, float] = {"html": 0.0, "json": 0.0}
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        media = media.lower()
        for kind, matches in (
            ("html", ("text/html", "text/*", "*/*")),
            ("json", ("application/json", "application/*", "*/*")),
        ):
            if media in matches:
                best[kind] = max(best[kind], quality)
    if best["json"] > best["html"]:
        return "json"
    if best["html"] > 0:
        return "html"
    return "plain"


def error_response(
    status: HTTPStatus,
    message: str,
    headers: dict[str, str] | None = None,
    accept: str = "application/json",
) -> Response:
    """Glance's error body, negotiated like Glance's: JSON for `Accept: application/json`
    ({"message", "code", "title"}), HTML for `*/*` (what python-glanceclient sends and parses),
    and plain text when Accept is absent or matches neither."""
    code = f"{status.value} {status.phrase}"
    kind = _wants(accept)
    if kind == "json":
        body = {"message": message, "code": code, "title": status.phrase}
        return JSONResponse(body, status_code=status.value, headers=headers)
    if kind == "html":
        page = (
            f"<html>\n <head>\n  <title>{code}</title>\n </head>\n <body>\n  <h1>{code}</h1>\n"
            f"  {html.escape(message)}\n </body>\n</html>"
        )
        return HTMLResponse(page, status_code=status.value, headers=headers)
    return PlainTextResponse(f"{code}\n\n{message}\n", status_code=status.value, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GlimpseError)  # noqa: S101 -- registered for this type only
    status = status_for(exc)
    headers = None
    if isinstance(exc, errors.RangeNotSatisfiable) and exc.size is not None:
        headers = {"Content-Range": f"bytes */{exc.size}"}
    if isinstance(exc, errors.NotAuthenticated):
        headers = {"WWW-Authenticate": _challenge(request)}
    if isinstance(exc, errors.UnsupportedMediaType) and exc.accept_patch:
        headers = {"Accept-Patch": exc.accept_patch}
    if isinstance(exc, errors.MethodNotAllowed):
        headers = {"Allow": exc.allow}
    if isinstance(exc, errors.DatabaseUnavailable):
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER)}
    return error_response(status, exc.message, headers, _accept(request))


async def _store_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreError)  # noqa: S101 -- registered for this type only
    return await _domain_error(request, failure_for(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 -- registered for this type only
    status = HTTPStatus(exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else status.description
    headers = dict(exc.headers or {})
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        message = "The method specified is not allowed for this resource."
        headers["Allow"] = _allowed_methods(request)
    elif status is HTTPStatus.NOT_FOUND and message == "Not Found":
        message = "The resource could not be found."
    return error_response(status, message, headers, _accept(request))


def _allowed_methods(request: Request) -> str:
    """Every method the path takes, as Glance's Allow lists them: Starlette's names only
    those of the first route whose path matched. A literal path (/v2/cache/clean) is its own
    resource: the methods of a templated sibling (/v2/cache/{image_id}) are not its."""
    path = request.scope["path"]
    methods: dict[bool, set[str]] = {True: set(), False: set()}
    for route in iter_route_contexts(request.app.routes):
        if route.path_regex.match(path):
            methods["{" not in (route.path or "")] |= route.methods or set()
    return ", ".join(sorted(methods[True] or methods[False]))


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 -- registered for this type only
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
    return error_response(HTTPStatus.BAD_REQUEST, problems, accept=_accept(request))


async def _client_gone(request: Request, _exc: Exception) -> Response:
    # Nobody reads this answer; the service has already undone the partial work.
    log.info("client disconnected during %s %s", request.method, request.url.path)
    return error_response(HTTPStatus.BAD_REQUEST, "Client disconnected before the body was read.")


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR,
        "The server has either erred or is incapable of performing the requested operation.",
        accept=_accept(request),
    )


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.GlimpseError, _domain_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(Exception, _unexpected)
