"""Per-store data: DELETE /v2/stores/{store_id}/{image_id} (2.10)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from glimpse_api.deps import ContextDep, LocationServiceDep
from glimpse_api.openapi.routes import operation

router = APIRouter(prefix="/v2/stores")


@router.delete("/{store_id}/{image_id}", status_code=204, **operation(errors=(403, 409, 503)))
async def delete_from_store(
    store_id: str, image_id: str, ctx: ContextDep, locations: LocationServiceDep
) -> Response:
    await locations.delete_from_store(ctx, store_id, image_id)
    return Response(status_code=204)
