"""Image actions (API 2.3): POST /v2/images/{id}/actions/deactivate and /reactivate."""

from __future__ import annotations

from fastapi import APIRouter, Response

from glimpse_api.deps import ContextDep, ImageServiceDep
from glimpse_api.openapi.routes import operation

router = APIRouter(prefix="/v2/images/{image_id}/actions")

_ACTION = operation(errors=(403, 409))


@router.post("/deactivate", status_code=204, **_ACTION)
async def deactivate_image(image_id: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.change_activation(ctx, image_id, "deactivate")
    return Response(status_code=204)


@router.post("/reactivate", status_code=204, **_ACTION)
async def reactivate_image(image_id: str, ctx: ContextDep, images: ImageServiceDep) -> Response:
    await images.change_activation(ctx, image_id, "reactivate")
    return Response(status_code=204)
