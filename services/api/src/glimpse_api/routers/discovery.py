"""Discovery: the stores on offer (2.8, details 2.15) and the caller's usage (2.13)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from glimpse_api.deps import ContextDep, DiscoveryServiceDep

router = APIRouter(prefix="/v2/info")


@router.get("/stores")
async def list_stores(_ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"stores": discovery.list_stores()}


@router.get("/stores/detail")
async def list_stores_detail(ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"stores": discovery.list_stores_detail(ctx)}


@router.get("/usage")
async def usage(ctx: ContextDep, discovery: DiscoveryServiceDep) -> dict[str, Any]:
    return {"usage": await discovery.usage(ctx)}
