"""Image actions (API 2.3): POST /v2/images/{id}/actions/deactivate and /reactivate."""

from __future__ import annotations

from fastapi import APIRouter, Response

from glimpse_api.deps import ContextDep, ImageServiceDep

router = APIRouter(prefix="/v2/images/{image_id}/actions")


@router.post("/deactivate", status_code=204)
async def deactivate_image(image_id: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.change_activation(ctx, image_id, "deactivate")
    return Response(status_code=204)


@router.post("/reactivate", status_code=204)
async def reactivate_image(image_id: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.change_activation(ctx, image_id, "reactivate")
    return Response(status_code=204)
