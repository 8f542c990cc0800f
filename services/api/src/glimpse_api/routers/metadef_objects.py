"""Objects and properties of a namespace: /v2/metadefs/namespaces/{namespace}/objects[/{name}]
and .../properties[/{name}]."""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse

from glimpse.domain.metadefs import parse_object, parse_property
from glimpse_api.deps import ContextDep, MetadefsDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.routers.metadef_namespaces import READ, WRITE, Namespace
from glimpse_api.schemas.body import read_json
from glimpse_api.schemas.metadefs import (
    NAMESPACES,
    object_view,
    objects_view,
    properties_view,
    property_view,
)

router = APIRouter(prefix=f"{NAMESPACES}/{{namespace}}", tags=["metadefs"])
NEW_OBJECT: Final = ref("NewMetadefObject")
PROPERTY: Final = ref("MetadefProperty")  # as it is posted, so it is shown

ObjectName = Annotated[str, PathParam(description="the object's name")]
PropertyName = Annotated[str, PathParam(description="the property's name")]


@router.get("/objects", **operation(ok=(200, ref("MetadefObjects")), errors=READ))
async def list_objects(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    return JSONResponse(objects_view(await metadefs.objects.list_objects(ctx, namespace)))


@router.post(
    "/objects",
    status_code=201,
    **operation(ok=(201, ref("MetadefObject")), errors=WRITE, body=json_body(NEW_OBJECT)),
)
async def create_object(
    namespace: Namespace, request: Request, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    definition = parse_object(await read_json(request))
    view = await metadefs.objects.create(ctx, namespace, definition)
    return JSONResponse(object_view(view), status_code=201)


@router.get("/objects/{object_name}", **operation(ok=(200, ref("MetadefObject")), errors=READ))
async def show_object(
    namespace: Namespace, object_name: ObjectName, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    return JSONResponse(object_view(await metadefs.objects.show(ctx, namespace, object_name)))


@router.put(
    "/objects/{object_name}",
    **operation(ok=(200, ref("MetadefObject")), errors=WRITE, body=json_body(NEW_OBJECT)),
)
async def update_object(
    namespace: Namespace,
    object_name: ObjectName,
    request: Request,
    ctx: ContextDep,
    metadefs: MetadefsDep,
) -> JSONResponse:
    definition = parse_object(await read_json(request))
    view = await metadefs.objects.update(ctx, namespace, object_name, definition)
    return JSONResponse(object_view(view))


@router.delete("/objects/{object_name}", status_code=204, **operation(errors=READ))
async def delete_object(
    namespace: Namespace, object_name: ObjectName, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.objects.delete(ctx, namespace, object_name)
    return Response(status_code=204)


@router.get("/properties", **operation(ok=(200, ref("MetadefProperties")), errors=READ))
async def list_properties(
    namespace: Namespace, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    return JSONResponse(properties_view(await metadefs.properties.list_properties(ctx, namespace)))


@router.post(
    "/properties",
    status_code=201,
    **operation(ok=(201, PROPERTY), errors=WRITE, body=json_body(PROPERTY)),
)
async def create_property(
    namespace: Namespace, request: Request, ctx: ContextDep, metadefs: MetadefsDep
) -> JSONResponse:
    definition = parse_property(await read_json(request))
    view = await metadefs.properties.create(ctx, namespace, definition)
    return JSONResponse(property_view(view), status_code=201)


@router.get("/properties/{property_name}", **operation(ok=(200, PROPERTY), errors=READ))
async def show_property(
    namespace: Namespace,
    property_name: PropertyName,
    ctx: ContextDep,
    metadefs: MetadefsDep,
    resource_type: Annotated[
        str | None, Query(description="the name carries this resource type's prefix")
    ] = None,
) -> JSONResponse:
    view = await metadefs.properties.show(ctx, namespace, property_name, resource_type)
    return JSONResponse(property_view(view))


@router.put(
    "/properties/{property_name}",
    **operation(ok=(200, PROPERTY), errors=WRITE, body=json_body(PROPERTY)),
)
async def update_property(
    namespace: Namespace,
    property_name: PropertyName,
    request: Request,
    ctx: ContextDep,
    metadefs: MetadefsDep,
) -> JSONResponse:
    definition = parse_property(await read_json(request))
    view = await metadefs.properties.update(ctx, namespace, property_name, definition)
    return JSONResponse(property_view(view))


@router.delete("/properties/{property_name}", status_code=204, **operation(errors=READ))
async def delete_property(
    namespace: Namespace, property_name: PropertyName, ctx: ContextDep, metadefs: MetadefsDep
) -> Response:
    await metadefs.properties.delete(ctx, namespace, property_name)
    return Response(status_code=204)
