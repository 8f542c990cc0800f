"""The one table that maps domain errors to HTTP statuses, and Glance's error body."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from glimpse.domain import errors

log = logging.getLogger(__name__)

STATUS_BY_ERROR: Final[tuple[tuple[type[errors.GlimpseError], HTTPStatus], ...]] = (
    (errors.InvalidInput, HTTPStatus.BAD_REQUEST),
    (errors.NotAuthenticated, HTTPStatus.UNAUTHORIZED),
    (errors.Forbidden, HTTPStatus.FORBIDDEN),
    (errors.NotFound, HTTPStatus.NOT_FOUND),
    (errors.Conflict, HTTPStatus.CONFLICT),
    (errors.Gone, HTTPStatus.GONE),
    (errors.LimitExceeded, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (errors.UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (errors.RangeNotSatisfiable, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE),
    (errors.StoreUnavailable, HTTPStatus.SERVICE_UNAVAILABLE),
)


def status_for(error: errors.GlimpseError) -> HTTPStatus:
    for error_type, status in STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return status
    return HTTPStatus.INTERNAL_SERVER_ERROR


def error_response(status: HTTPStatus, message: str, headers: dict[str, str] | None = None) -> Response:
    """Glance's error body: {"code": "404 Not Found", "title": "Not Found", "message": ...}."""
    body = {
        "code": f"{status.value} {status.phrase}",
        "title": status.phrase,
        "message": message,
    }
    return JSONResponse(body, status_code=status.value, headers=headers)


async def _domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GlimpseError)  # noqa: S101 -- registered for this type only
    status = status_for(exc)
    headers = None
    if isinstance(exc, errors.RangeNotSatisfiable):
        headers = {"Content-Range": f"bytes */{exc.size}"}
    if isinstance(exc, errors.NotAuthenticated):
        headers = {"WWW-Authenticate": "Keystone uri=''"}
    return error_response(status, exc.message, headers)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 -- registered for this type only
    status = HTTPStatus(exc.status_code)
    message = exc.detail if isinstance(exc.detail, str) else status.description
    if status is HTTPStatus.METHOD_NOT_ALLOWED:
        message = "The method specified is not allowed for this resource."
    elif status is HTTPStatus.NOT_FOUND and message == "Not Found":
        message = "The resource could not be found."
    return error_response(status, message, dict(exc.headers or {}))


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 -- registered for this type only
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
    )
    return error_response(HTTPStatus.BAD_REQUEST, problems)


async def _unexpected(_request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(
        HTTPStatus.INTERNAL_SERVER_ERROR, "The server has either erred or is incapable of performing the requested operation."
    )


def add_exception_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.GlimpseError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
