"""Discovery: the stores on offer (2.8, details 2.15) and the caller's usage (2.13)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from glimpse_api.deps import ContextDep, DiscoveryServiceDep
from glimpse_api.openapi.routes import operation, ref

router = APIRouter(prefix="/v2/info")


# Without enabled_backends the store routes answer 404, as in Glance.
@router.get("/stores", **operation(ok=(200, ref("Stores")), errors=(404,)))
async def list_stores(_ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"stores": discovery.list_stores()}


@router.get("/stores/detail", **operation(ok=(200, ref("StoresDetail")), errors=(403, 404)))
async def list_stores_detail(ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"stores": discovery.list_stores_detail(ctx)}


@router.get("/usage", **operation(ok=(200, ref("Usage"))))
async def usage(ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"usage": await discovery.usage(ctx)}
