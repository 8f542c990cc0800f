"""The whole document: FastAPI's, completed with what follows from the routes' code."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts

from glimpse.config import Settings
from glimpse_api.deps import get_context
from glimpse_api.identity import MAX_ID_LENGTH
from glimpse_api.openapi.components import component_schemas
from glimpse_api.openapi.routes import error_response, header, string

# FastAPI documents its own validation answer; the app answers 400 in Glance's format instead.
_FASTAPI_VALIDATION: Final = "422"
ID: Final = string(maxLength=MAX_ID_LENGTH)


@dataclass(frozen=True, slots=True)
class _Identity:
    """How auth_strategy learns who the caller is: the header it requires (a security scheme)
    and the optional ones that complete the identity (header parameters)."""

    schemes: dict[str, dict[str, str]]
    optional: dict[str, dict[str, Any]]
    # Beyond 401 and 503: what a request answers for its identity headers alone.
    errors: tuple[HTTPStatus, ...] = ()

    @property
    def requirement(self) -> list[dict[str, list[str]]]:
        return [{name: [] for name in self.schemes}] if self.schemes else []


def _api_key(name: str, description: str) -> dict[str, str]:
    return {"type": "apiKey", "in": "header", "name": name, "description": description}


def _identity(settings: Settings) -> _Identity:
    if settings.auth_strategy == "keystone":
        return _Identity(
            {"keystoneToken": _api_key("X-Auth-Token", "A Keystone token")},
            {"X-Service-Token": header("X-Service-Token", string(), "A service's token")},
        )
    if settings.auth_strategy == "trusted-proxy":
        optional = (
            ("X-User-Id", "The caller's user id"),
            ("X-Project-Id", "The caller's project id"),
            ("X-Tenant-Id", "The caller's project id, when X-Project-Id is absent"),
            ("X-Roles", "Comma-separated roles, implied ones included"),
        )
        return _Identity(
            {"identityStatus": _api_key("X-Identity-Status", "`Confirmed`; anything else is 401")},
            {
                name: header(name, string() if name == "X-Roles" else ID, text)
                for name, text in optional
            },
            (HTTPStatus.BAD_REQUEST,),  # an id longer than MAX_ID_LENGTH
        )
    return _Identity({}, {})  # noauth: every caller is the admin of noauth_project_id


def _identifies_caller(dependant: Dependant) -> bool:
    return any(
        dependency.call is get_context or _identifies_caller(dependency)
        for dependency in dependant.dependencies
    )


def _operations(app: FastAPI) -> Iterator[tuple[str, str, Dependant]]:
    """(path, method, dependencies) of every documented route, through included routers."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            for method in context.methods or ():
                yield str(context.path_format), method.lower(), context.dependant


def build_document(app: FastAPI, settings: Settings) -> dict[str, Any]:
    document = get_openapi(
        title=app.title,
        version=app.version,
        summary="The OpenStack Images API v2 (Glance's), as Glimpse serves it",
        routes=app.routes,
    )
    identity = _identity(settings)
    components = document.setdefault("components", {})
    components["schemas"] = component_schemas()
    if identity.schemes:
        components["securitySchemes"] = identity.schemes
    if identity.optional:
        components["parameters"] = identity.optional
    for path, method, dependant in _operations(app):
        operation = document["paths"][path][method]
        operation["security"] = []
        if _identifies_caller(dependant):
            operation["security"] = identity.requirement
            operation.setdefault("parameters", []).extend(
                {"$ref": "#/components/parameters/" + name} for name in identity.optional
            )
            _add_errors(
                operation,
                HTTPStatus.UNAUTHORIZED,
                HTTPStatus.SERVICE_UNAVAILABLE,
                *identity.errors,
            )
        _add_input_errors(operation)
    return document


def _add_errors(operation: dict[str, Any], *statuses: HTTPStatus) -> None:
    for status in statuses:
        operation["responses"].setdefault(str(status.value), error_response(status))


def _add_input_errors(operation: dict[str, Any]) -> None:
    """The answers that follow from what the operation takes."""
    operation["responses"].pop(_FASTAPI_VALIDATION, None)
    # Identity parameters are references and name no location: they add no 400.
    locations = {parameter.get("in") for parameter in operation.get("parameters", ())}
    if "requestBody" in operation:
        _add_errors(operation, HTTPStatus.BAD_REQUEST, HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if locations & {"query", "header"}:
        _add_errors(operation, HTTPStatus.BAD_REQUEST)
    if "path" in locations:
        _add_errors(operation, HTTPStatus.NOT_FOUND)
