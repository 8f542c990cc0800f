"""Metadata definition namespaces: /v2/metadefs/namespaces[/{namespace}], and the deletes of
all objects, properties or tags of one."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from glimpse.domain.errors import InvalidInput
from glimpse.domain.metadefs import parse_namespace, parse_namespace_fields
from glimpse.services.metadef_namespaces import NamespaceListQuery
from glimpse_api.deps import ContextDep, MetadefsDep, SettingsDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.schemas.body import read_json
from glimpse_api.schemas.metadefs import NAMESPACES, namespace_view

router = APIRouter(prefix=NAMESPACES, tags=["metadefs"])
# Policies answer 403, or 404 to whoever may not read the namespace (metadef_policy); a
# write may also meet a name already taken.
READ: Final = (403, 404)
WRITE: Final = (403, 404, 409)
NEW_NAMESPACE: Final = ref("NewMetadefNamespace")

Namespace = Annotated[
    str, PathParam(description="the namespace's name, e.g. OS::Compute::Watchdog")
]


@router.get("", **operation(ok=(200, ref("MetadefNamespaces")), errors=READ))
async def list_namespaces(  # noqa: PLR0917 -- the query parameters Glance takes
    request: Request,
    ctx: ContextDep,
    metadefs: MetadefsDep,
    settings: SettingsDep,
    limit: Annotated[int | None, Query()] = None,
    marker: Annotated[str | None, Query(description="name of the last namespace seen")] = None,
    sort_key: str = "created_at",
    sort_dir: Literal["asc", "desc"] = "desc",
    visibility: Literal["public", "private"] | None = None,
    resource_types: Annotated[str | None, Query(description="comma-separated, any of")] = None,
) -> JSONResponse:
    if limit is not None and limit < 0:
        raise InvalidInput("limit param must be positive")
    query = NamespaceListQuery(
        limit=min(settings.api_limit_max, settings.limit_param_default if limit is None else limit),
        marker=marker,
        sort_key=sort_key,
        sort_dir=sort_dir,
        visibility=visibility,
        resource_types=tuple(t for t in (resource_types or "").split(",") if t),
    )
    page = await metadefs.namespaces.list_namespaces(ctx, query)
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "marker"]
    body: dict[str, Any] = {
        "namespaces": [namespace_view(view, contents=False) for view in page.namespaces],
        "first": f"{NAMESPACES}?{urlencode(kept)}" if kept else NAMESPACES,
        "schema": "/v2/schemas/metadefs/namespaces",
    }
    if page.next_marker is not None:
        body["next"] = f"{NAMESPACES}?{urlencode([*kept, ('marker', page.next_marker)])}"
    return JSONResponse(body)


@router.post(
    "",
    status_code=201,
    **operation(ok=(201, ref("MetadefNamespace")), errors=WRITE, body=json_body(NEW_NAMESPACE)),
)
async def create_namespace(
    request: Request, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    document = parse_namespace(await read_json(request))
    body = namespace_view(await metadefs.namespaces.create(ctx, document))
    # A header carries Latin-1 only, and a URI ASCII: any other character of the name is
    # percent-encoded there (the body keeps it as it is).
    location = quote(body["self"], safe="/:")
    return JSONResponse(body, status_code=201, headers={"Location": location})


@router.get("/{namespace}", **operation(ok=(200, ref("MetadefNamespace")), errors=READ))
async def show_namespace(
    namespace: Namespace,
    ctx: ContextDep,
    metadefs: MetadefsDep,
    resource_type: Annotated[
        str | None, Query(description="show property names with this type's prefix")
    ] = None,
) -> JSONResponse:
    view = await metadefs.namespaces.show(ctx, namespace, resource_type)
    return JSONResponse(namespace_view(view))


@router.put(
    "/{namespace}",
    **operation(ok=(200, ref("MetadefNamespace")), errors=WRITE, body=json_body(NEW_NAMESPACE)),
)
async def update_namespace(
    namespace: Namespace, request: Request, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    fields = parse_namespace_fields(await read_json(request))
    view = await metadefs.namespaces.update(ctx, namespace, fields)
    return JSONResponse(namespace_view(view))


@router.delete("/{namespace}", status_code=204, **operation(errors=READ))
async def delete_namespace(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.namespaces.delete(ctx, namespace)
    return Response(status_code=204)


@router.delete("/{namespace}/objects", status_code=204, **operation(errors=READ))
async def delete_all_objects(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.namespaces.delete_objects(ctx, namespace)
    return Response(status_code=204)


@router.delete("/{namespace}/properties", status_code=204, **operation(errors=READ))
async def delete_all_properties(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.namespaces.delete_properties(ctx, namespace)
    return Response(status_code=204)


@router.delete("/{namespace}/tags", status_code=204, **operation(errors=READ))
async def delete_all_tags(namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep) -> Response:
    await metadefs.namespaces.delete_tags(ctx, namespace)
    return Response(status_code=204)
