"""Version discovery: GET / (300 Multiple Choices) and GET /versions (200)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from glimpse.config import Settings
from glimpse_api.deps import SettingsDep
from glimpse_api.openapi.routes import operation, ref

router = APIRouter()

# Clients look for a minor version before they use its feature, so only versions whose
# features are here are listed; as in Glance, the multi-store ones only with enabled_backends.
# That includes the metadata definitions catalog (routers/metadef_*) of the 2.x series, and the
# cache API's versions (2.14, 2.16, 2.18) with image_cache_dir, 2.18 then being CURRENT.
ALWAYS: Final = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 17})
MULTISTORE: Final = frozenset({8, 10, 11, 12, 13})
CACHE: Final = frozenset({14, 16, 18})


def minor_versions(settings: Settings) -> list[int]:
    listed = ALWAYS | MULTISTORE if settings.multistore else ALWAYS
    if settings.cache_enabled:
        listed |= CACHE
    return sorted(listed, reverse=True)


def versions_body(base_url: str, settings: Settings) -> dict[str, Any]:
    href = base_url.rstrip("/") + "/v2/"
    minors = minor_versions(settings)
    current = minors[0]
    return {
        "versions": [
            {
                "id": f"v2.{minor}",
                "status": "CURRENT" if minor == current else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for minor in minors
        ]
    }


def _base_url(request: Request, public_endpoint: str | None) -> str:
    return public_endpoint or str(request.base_url)


@router.get("/", status_code=300, **operation(ok=(300, ref("Versions"))))
async def multiple_choices(request: Request, settings: SettingsDep) -> JSONResponse:
    body = versions_body(_base_url(request, settings.public_endpoint), settings)
    return JSONResponse(body, status_code=300)


@router.get("/versions", **operation(ok=(200, ref("Versions"))))
async def list_versions(request: Request, settings: SettingsDep) -> JSONResponse:
    return JSONResponse(versions_body(_base_url(request, settings.public_endpoint), settings))
