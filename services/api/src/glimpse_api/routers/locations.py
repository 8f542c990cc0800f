"""Image locations (2.17): POST adds one to a queued image, GET lists them (services)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from glimpse.domain.errors import InvalidInput
from glimpse_api.deps import ContextDep, LocationServiceDep
from glimpse_api.openapi.routes import json_body, operation, ref
from glimpse_api.schemas.body import read_json_object

router = APIRouter(prefix="/v2/images/{image_id}/locations")

_ADD_LOCATION_MEMBERS = frozenset({"url", "validation_data"})


@router.post(
    "",
    status_code=202,
    **operation(ok=(202, None), errors=(403, 409, 503), body=json_body(ref("NewLocation"))),
)
async def add_location(
    image_id: str, request: Request, ctx: ContextDep, locations: LocationServiceDep
) -> Response:
    body = await read_json_object(request)
    unknown = set(body) - _ADD_LOCATION_MEMBERS
    if unknown or not isinstance(body.get("url"), str):
        raise InvalidInput("Body must be an object with a url and optional validation_data.")
    await locations.add_location(ctx, image_id, body["url"], body.get("validation_data"))
    return Response(status_code=202)


@router.get("", **operation(ok=(200, {"type": "array", "items": ref("Location")}), errors=(403,)))
async def list_locations(
    image_id: str, ctx: ContextDep, locations: LocationServiceDep
) -> list[dict[str, Any]]:
    return await locations.list_locations(ctx, image_id)
