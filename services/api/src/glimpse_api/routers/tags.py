"""Image tags: PUT and DELETE /v2/images/{id}/tags/{tag}."""

from __future__ import annotations

from fastapi import APIRouter, Response

from glimpse_api.deps import ContextDep, ImageServiceDep
from glimpse_api.openapi.routes import operation

router = APIRouter(prefix="/v2/images/{image_id}/tags")


@router.put("/{tag}", status_code=204, **operation(errors=(400, 403, 413)))
async def add_tag(image_id: str, tag: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.add_tag(ctx, image_id, tag)
    return Response(status_code=204)


@router.delete("/{tag}", status_code=204, **operation(errors=(403,)))
async def delete_tag(image_id: str, tag: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.delete_tag(ctx, image_id, tag)
    return Response(status_code=204)
