"""Version discovery: GET / (300 Multiple Choices) and GET /versions (200)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from glimpse_api.deps import SettingsDep

router = APIRouter()

# Minor versions this service implements, newest first; exactly one is CURRENT.
CURRENT: Final = (2, 9)
VERSIONS: Final = tuple((2, minor) for minor in range(CURRENT[1], -1, -1))


def versions_body(base_url: str) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/v2/"
    return {
        "versions": [
            {
                "id": f"v{major}.{minor}",
                "status": "CURRENT" if (major, minor) == CURRENT else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for major, minor in VERSIONS
        ]
    }


def _base_url(request: Request, public_endpoint: str | None) -> str:
    return public_endpoint or str(request.base_url)


@router.get("/")
async def multiple_choices(request: Request, settings: SettingsDep) -> JSONResponse:
    body = versions_body(_base_url(request, settings.public_endpoint))
    return JSONResponse(body, status_code=300)


@router.get("/versions")
async def list_versions(request: Request, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(versions_body(_base_url(request, settings.public_endpoint)))
