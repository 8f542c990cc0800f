"""The ten metadata definitions schemas, /v2/schemas/metadefs/{name} (GET only, no policy)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter

from glimpse.domain.metadef_schemas import SERVED

router = APIRouter(prefix="/v2/schemas/metadefs", tags=["schemas"])


def _serve(factory: Callable[[], dict[str, Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    async def get_schema() -> dict[str, Any]:
        return factory()

    return get_schema


# One route per name (not a {name} parameter), so each is listed and unknown names are 404.
for _name, _factory in SERVED.items():
    router.add_api_route(
        f"/{_name}", _serve(_factory), methods=["GET"], name=f"get_metadef_{_name}_schema"
    )
