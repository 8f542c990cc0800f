"""Image locations (2.17): POST starts adding one to a queued image (a location_import task),
GET lists them (services)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glimpse_api.deps import ContextDep, LocationImportServiceDep, LocationServiceDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.schemas.body import read_json_object

router = APIRouter(prefix="/v2/images/{image_id}/locations")


@router.post(
    "",
    status_code=202,
    **operation(ok=(202, None), errors=(403, 409), body=json_body(ref("NewLocation"))),
)
async def add_location(
    image_id: str, request: Request, ctx: ContextDep, location_imports: LocationImportServiceDep
) -> Response:
    body = await read_json_object(request)
    await location_imports.add_location(ctx, image_id, body)
    return Response(status_code=202)


@router.get("", **operation(ok=(200, {"type": "array", "items": ref("Location")}), errors=(403,)))
async def list_locations(
    image_id: str, ctx: ContextDep, locations: LocationServiceDep
) -> list[dict[str, Any]]:
    return await locations.list_locations(ctx, image_id)
