"""GET /openapi.json: the OpenAPI document of the routes (unauthenticated, like /versions)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from glimpse_api.deps import SettingsDep
from glimpse_api.openapi.document import build_document

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi_document(request: Request, settings: SettingsDep) -> dict[str, Any]:
    state = request.app.state
    document: dict[str, Any] | None = getattr(state, "openapi_document", None)
    if document is None:  # the routes never change once the app runs: built once
        document = state.openapi_document = build_document(request.app, settings)
    return document
