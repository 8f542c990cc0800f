"""Interoperable import: the methods on offer, staging (PUT /stage) and POST /import."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glimpse_api.deps import ContextDep, ImportServiceDep
from glimpse_api.openapi.routes import STORE_HEADER, binary_body, json_body, operation, ref
from glimpse_api.schemas.body import content_length, read_json_object

router = APIRouter()


@router.get("/v2/info/import", **operation(ok=(200, ref("ImportInfo"))))
async def import_info(_ctx: ContextDep, imports: ImportServiceDep) -> dict[str, Any]:
    return imports.info()


@router.put(
    "/v2/images/{image_id}/stage",
    status_code=204,
    **operation(errors=(403, 409, 503), body=binary_body()),
)
async def stage_image_data(
    image_id: str, request: Request, ctx: ContextDep, imports: ImportServiceDep
) -> Response:
    await imports.stage(ctx, image_id, request.stream(), content_length(request))
    return Response(status_code=204)


@router.post(
    "/v2/images/{image_id}/import",
    status_code=202,
    **operation(
        ok=(202, None),
        errors=(403, 409),
        body=json_body(ref("ImportRequest")),
        parameters=[STORE_HEADER],
    ),
)
async def import_image(
    image_id: str, request: Request, ctx: ContextDep, imports: ImportServiceDep
) -> Response:
    body = await read_json_object(request)
    await imports.import_image(ctx, image_id, body, request.headers.get("x-image-meta-store"))
    return Response(status_code=202)
