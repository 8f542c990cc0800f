"""Interoperable import: the methods on offer, staging (PUT /stage) and POST /import."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glimpse.domain.errors import InvalidInput
from glimpse_api.deps import ContextDep, ImportServiceDep
from glimpse_api.schemas.body import content_length, read_json

router = APIRouter()


@router.get("/v2/info/import")
async def import_info(_ctx: ContextDep, imports: ImportServiceDep) -> dict[str, Any]:
    return imports.info()


@router.put("/v2/images/{image_id}/stage", status_code=204)
async def stage_image_data(
    image_id: str, request: Request, ctx: ContextDep, imports: ImportServiceDep
) -> Response:
    await imports.stage(ctx, image_id, request.stream(), content_length(request))
    return Response(status_code=204)


@router.post("/v2/images/{image_id}/import", status_code=202)
async def import_image(
    image_id: str, request: Request, ctx: ContextDep, imports: ImportServiceDep
) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise InvalidInput("The import request body must be a JSON object.")
    await imports.import_image(ctx, image_id, body, request.headers.get("x-image-meta-store"))
    return Response(status_code=202)
