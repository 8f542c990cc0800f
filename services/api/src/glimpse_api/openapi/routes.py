"""What a route decorator says about the route: its body, parameters and answers."""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any, Final

from fastapi import Response

from glimpse.domain.images import MAX_TAG_LENGTH
from glimpse.domain.listing import (
    COLUMN_FILTERS,
    INTEGER_FILTERS,
    MAX_SIZE,
    MAX_TAG_FILTERS,
    SORT_KEYS,
    TIME_FILTERS,
    SortDir,
)
from glimpse.domain.members import LIST_MEMBER_STATUSES
from glimpse.domain.patch import PATCH_MEDIA_TYPES
from glimpse.domain.tasks import TASK_SORT_KEYS, TaskStatus

JSON: Final = "application/json"
OCTET_STREAM: Final = "application/octet-stream"
BINARY: Final = {"type": "string", "format": "binary"}


def ref(name: str) -> dict[str, str]:
    """A schema of components.py, by name."""
    return {"$ref": "#/components/schemas/" + name}


def string(**constraints: Any) -> dict[str, Any]:  # noqa: ANN401 -- JSON schema keywords
    return {"type": "string", **constraints}


def enum(values: Iterable[str]) -> dict[str, Any]:
    return string(enum=sorted(values))


def query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    parameter: dict[str, Any] = {"name": name, "in": "query", "schema": schema}
    if schema.get("type") == "array":
        parameter.update(style="form", explode=True)  # repeated: ?tag=a&tag=b
    if description:
        parameter["description"] = description
    return parameter


def header(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "header", "schema": schema, "description": description}


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": schema}}}


def binary_body() -> dict[str, Any]:
    return {"required": True, "content": {OCTET_STREAM: {"schema": BINARY}}}


def error_response(status: int) -> dict[str, Any]:
    """Glance's error body, in the media type the request's Accept picks (errors.py)."""
    return {
        "description": HTTPStatus(status).phrase,
        "content": {
            JSON: {"schema": ref("Error")},
            "text/html": {"schema": string()},
            "text/plain": {"schema": string()},
        },
    }


def operation(
    *,
    ok: tuple[int, dict[str, Any] | None] | None = None,
    errors: Iterable[int] = (),
    body: dict[str, Any] | None = None,
    parameters: Iterable[dict[str, Any]] = (),
    extra: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for a route decorator that describe the route in the document.

    `ok` is the success status and the schema of its JSON body (None: no body); `errors` the
    statuses, besides those the document derives, that the route answers in Glance's error
    format; `extra` other responses as OpenAPI writes them."""
    responses: dict[int, dict[str, Any]] = {}
    decorator: dict[str, Any] = {}
    if ok is not None:
        status, schema = ok
        responses[status] = {"description": HTTPStatus(status).phrase}
        if schema is None:
            decorator["response_class"] = Response  # documents no body (FastAPI's JSON otherwise)
        else:
            responses[status]["content"] = {JSON: {"schema": schema}}
    for status in errors:
        responses[status] = error_response(status)
    responses.update(extra or {})
    openapi_extra: dict[str, Any] = {}
    if body is not None:
        openapi_extra["requestBody"] = body
    if parameters:
        openapi_extra["parameters"] = list(parameters)
    return {**decorator, "responses": responses, "openapi_extra": openapi_extra or None}


# -- what several routes take ------------------------------------------------------------

PATCH_BODY: Final = {
    "required": True,
    "content": {
        PATCH_MEDIA_TYPES[0]: {"schema": ref("ImagePatch")},
        PATCH_MEDIA_TYPES[1]: {"schema": ref("ImagePatchV20")},
    },
}
STORE_HEADER: Final = header(
    "X-Image-Meta-Store", string(), "Store to write to (multi-store; default: default_backend)"
)


def image_list_parameters() -> list[dict[str, Any]]:
    """GET /v2/images: paging, sorting and filters (any other name filters extra properties)."""
    size = {"type": "integer", "minimum": 0, "maximum": MAX_SIZE}
    times = "[op:]ISO 8601 time, op one of eq, neq, gt, gte, lt, lte"
    return [
        query("limit", {"type": "integer", "minimum": 0}, "Page size (capped by api_limit_max)"),
        query("marker", string(), "Id of the last image of the previous page"),
        query("sort", string(), "key[:asc|desc],..."),
        query("sort_key", {"type": "array", "items": enum(SORT_KEYS)}),
        query("sort_dir", {"type": "array", "items": enum(SortDir)}),
        query(
            "tag",
            {"type": "array", "items": string(maxLength=MAX_TAG_LENGTH)},
            f"Images with every one of these tags (at most {MAX_TAG_FILTERS} different ones)",
        ),
        query("size_min", size),
        query("size_max", size),
        query("protected", enum(("true", "false"))),
        query("os_hidden", {"type": "boolean"}),
        query("member_status", enum(LIST_MEMBER_STATUSES)),
        query("visibility", enum(("public", "private", "shared", "community", "all"))),
        *(query(name, string(), times) for name in sorted(TIME_FILTERS)),
        *(
            query(name, {"type": "integer", "minimum": 0, "maximum": maximum})
            for name, maximum in sorted(INTEGER_FILTERS.items())
        ),
        *(
            query(name, string(), "a value, `in:a,b` or `eq:a`")
            for name in sorted(COLUMN_FILTERS - {"visibility", *INTEGER_FILTERS})
        ),
    ]


def task_list_parameters() -> list[dict[str, Any]]:
    return [
        query("limit", {"type": "integer", "minimum": 0}),
        query("marker", string()),
        query("sort_key", enum(TASK_SORT_KEYS)),
        query("sort_dir", enum(SortDir)),
        query("type", string()),
        query("status", enum(TaskStatus)),
    ]
