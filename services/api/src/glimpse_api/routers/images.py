"""Image records: create, list, show, update (JSON-patch), delete."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from glimpse.domain import patch
from glimpse.domain.listing import parse_list_query
from glimpse_api.deps import ContextDep, ImageServiceDep, SettingsDep, runtime_of
from glimpse_api.json_response import JSONResponse
from glimpse_api.openapi.routes import PATCH_BODY, image_list_parameters, json_body, operation, ref
from glimpse_api.schemas.body import read_json, read_json_object
from glimpse_api.schemas.images import image_view

router = APIRouter(prefix="/v2/images")

# The hottest routes (create, list, show) take the services from the process's runtime rather
# than as dependencies: resolving each dependency costs them more than reading an attribute.


@router.post(
    "",
    status_code=201,
    **operation(ok=(201, ref("Image")), errors=(403, 409), body=json_body(ref("Image"))),
)
async def create_image(request: Request, ctx: ContextDep) -> JSONResponse:
    runtime = runtime_of(request)
    settings = runtime.settings
    record = await runtime.images.create(ctx, await read_json_object(request))
    body = image_view(record, settings)
    headers = {"Location": str(request.base_url).rstrip("/") + body["self"]}
    # Glance's hints to clients about what they may do next (empty lists are left out).
    if settings.enabled_import_methods:
        headers["OpenStack-image-import-methods"] = ",".join(settings.enabled_import_methods)
    if settings.multistore:
        headers["OpenStack-image-store-ids"] = ",".join(settings.enabled_backends)
    return JSONResponse(body, status_code=201, headers=headers)


@router.get(
    "", **operation(ok=(200, ref("Images")), errors=(403,), parameters=image_list_parameters())
)
async def list_images(request: Request, ctx: ContextDep) -> JSONResponse:
    runtime = runtime_of(request)
    settings = runtime.settings
    params = list(request.query_params.multi_items())
    query = parse_list_query(
        params, default_limit=settings.limit_param_default, max_limit=settings.api_limit_max
    )
    page = await runtime.images.list_images(ctx, query)
    body: dict[str, Any] = {
        "images": [image_view(record, settings) for record in page.records],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if page.next_marker is not None:
        kept = [(k, v) for k, v in params if k != "marker"]
        body["next"] = "/v2/images?" + urlencode([*kept, ("marker", page.next_marker)])
    return JSONResponse(body)


@router.get("/{image_id}", **operation(ok=(200, ref("Image"))))
async def show_image(image_id: str, request: Request, ctx: ContextDep) -> JSONResponse:
    runtime = runtime_of(request)
    # JSONResponse directly: the body is already plain JSON data, nothing to validate.
    return JSONResponse(image_view(await runtime.images.get(ctx, image_id), runtime.settings))


@router.patch(
    "/{image_id}",
    **operation(ok=(200, ref("Image")), errors=(403, 409, 415), body=PATCH_BODY),
)
async def update_image(
    image_id: str,
    request: Request,
    ctx: ContextDep,
    images: ImageServiceDep,
    settings: SettingsDep,
) -> JSONResponse:
    patch.check_media_type(request.headers.get("content-type"))
    operations = patch.parse_operations(await read_json(request))
    return JSONResponse(image_view(await images.update(ctx, image_id, operations), settings))


@router.delete("/{image_id}", status_code=204, **operation(errors=(403,)))
async def delete_image(image_id: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.delete(ctx, image_id)
    return Response(status_code=204)
