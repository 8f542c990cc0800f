"""Tags of a namespace (/v2/metadefs/namespaces/{namespace}/tags[/{name}]), resource types
(/v2/metadefs/resource_types) and a namespace's associations with them."""

from __future__ import annotations

from typing import Annotated, Final, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse
from oslo_utils import strutils

from glimpse.domain.errors import InvalidInput
from glimpse.domain.metadefs import check_name, parse_association, parse_tag, parse_tags
from glimpse.services.metadef_tags import TagListQuery
from glimpse_api.deps import ContextDep, MetadefsDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.routers.metadef_namespaces import READ, WRITE, Namespace
from glimpse_api.schemas.body import read_json
from glimpse_api.schemas.metadefs import (
    NAMESPACES,
    association_view,
    associations_view,
    resource_types_view,
    tag_names_view,
    tag_view,
)

router = APIRouter(tags=["metadefs"])
TAGS = f"{NAMESPACES}/{{namespace}}/tags"
ASSOCIATIONS = f"{NAMESPACES}/{{namespace}}/resource_types"

TAG: Final = ref("MetadefTag")

TagName = Annotated[str, PathParam(description="the tag")]


@router.get(TAGS, **operation(ok=(200, ref("MetadefTags")), errors=READ))
async def list_tags(  # noqa: PLR0917 -- the query parameters Glance takes
    namespace: Namespace,
    ctx: ContextDep,
    metadefs: MetadefsDep,
    limit: Annotated[int | None, Query(description="0 or none: every tag")] = None,
    marker: Annotated[str | None, Query(description="name of the last tag seen")] = None,
    sort_key: str = "created_at",
    sort_dir: Literal["asc", "desc"] = "desc",
) -> JSONResponse:
    if limit is not None and limit < 0:
        raise InvalidInput("limit param must be positive")
    query = TagListQuery(limit=limit, marker=marker, sort_key=sort_key, sort_dir=sort_dir)
    rows = await metadefs.tags.list_tags(ctx, namespace, query)
    return JSONResponse(tag_names_view([row.name for row in rows]))


@router.post(
    TAGS,
    status_code=201,
    **operation(ok=(201, ref("MetadefTags")), errors=WRITE, body=json_body(ref("NewMetadefTags"))),
)
async def create_tags(
    namespace: Namespace,
    request: Request,
    ctx: ContextDep,
    metadefs: MetadefsDep,
    x_openstack_append: Annotated[
        str | None, Header(description="true: keep the namespace's tags and add these")
    ] = None,
) -> JSONResponse:
    names = parse_tags(await read_json(request), namespace)
    append = strutils.bool_from_string(x_openstack_append)
    created = await metadefs.tags.create_many(ctx, namespace, names, append=append)
    return JSONResponse(tag_names_view(created), status_code=201)


@router.get(f"{TAGS}/{{tag_name}}", **operation(ok=(200, TAG), errors=READ))
async def show_tag(
    namespace: Namespace, tag_name: TagName, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    return JSONResponse(tag_view(await metadefs.tags.show(ctx, namespace, tag_name)))


@router.post(
    f"{TAGS}/{{tag_name}}", status_code=201, **operation(ok=(201, TAG), errors=(400, *WRITE))
)
async def create_tag(
    namespace: Namespace, tag_name: TagName, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    row = await metadefs.tags.create(ctx, namespace, check_name(tag_name, "tag"))
    return JSONResponse(tag_view(row), status_code=201)


@router.put(
    f"{TAGS}/{{tag_name}}",
    **operation(ok=(200, TAG), errors=WRITE, body=json_body(ref("NewMetadefTag"))),
)
async def update_tag(
    namespace: Namespace,
    tag_name: TagName,
    request: Request,
    ctx: ContextDep,
    metadefs: MetadefsDep,
) -> JSONResponse:
    new_name = parse_tag(await read_json(request))
    return JSONResponse(tag_view(await metadefs.tags.rename(ctx, namespace, tag_name, new_name)))


@router.delete(f"{TAGS}/{{tag_name}}", status_code=204, **operation(errors=READ))
async def delete_tag(
    namespace: Namespace, tag_name: TagName, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.tags.delete(ctx, namespace, tag_name)
    return Response(status_code=204)


@router.get(
    "/v2/metadefs/resource_types",
    **operation(ok=(200, ref("MetadefResourceTypes")), errors=READ),
)
async def list_resource_types(ctx: ContextDep, metadefs: MetadefsDep) -> JSONResponse:
    return JSONResponse(resource_types_view(await metadefs.resource_types.list_resource_types(ctx)))


@router.get(ASSOCIATIONS, **operation(ok=(200, ref("MetadefAssociations")), errors=READ))
async def list_associations(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    return JSONResponse(
        associations_view(await metadefs.resource_types.associations(ctx, namespace))
    )


@router.post(
    ASSOCIATIONS,
    status_code=201,
    **operation(
        ok=(201, ref("MetadefAssociation")),
        errors=WRITE,
        body=json_body(ref("NewMetadefAssociation")),
    ),
)
async def associate(
    namespace: Namespace, request: Request, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    association = parse_association(await read_json(request))
    row = await metadefs.resource_types.associate(ctx, namespace, association)
    return JSONResponse(association_view(row), status_code=201)


@router.delete(f"{ASSOCIATIONS}/{{resource_type}}", status_code=204, **operation(errors=READ))
async def dissociate(
    namespace: Namespace,
    resource_type: Annotated[str, PathParam(description="the resource type's name")],
    ctx: ContextDep,
    metadefs: MetadefsDep,
) -> Response:
    await metadefs.resource_types.dissociate(ctx, namespace, resource_type)
    return Response(status_code=204)
