"""The cache API (2.14-2.18): /v2/cache, its entries, the nodes holding an image, clean and
prune. Every route answers 404 when image_cache_dir is unset, after the policy check."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from glimpse_api.deps import CacheServiceDep, ContextDep
from glimpse_api.openapi.routes import header, operation, ref, string

router = APIRouter(prefix="/v2/cache")

_CLEAR_TARGET: Final = header(
    "x-image-cache-clear-target",
    string(enum=["", "cache", "queue", "both"]),
    "What to clear: cache, queue, or both (empty or absent)",
)
_PRUNED: Final = {
    "type": "object",
    "properties": {
        "total_files_pruned": {"type": "integer"},
        "total_bytes_pruned": {"type": "integer"},
    },
}
_NODES: Final = {"type": "array", "items": string()}


@router.get("", **operation(ok=(200, ref("CacheState")), errors=(403, 404)))
async def get_cache_state(ctx: ContextDep, cache: CacheServiceDep) -> dict[str, Any]:
    return await cache.state(ctx)


@router.delete(
    "",
    status_code=204,
    **operation(ok=(204, None), errors=(400, 403, 404), parameters=[_CLEAR_TARGET]),
)
async def clear_cache(request: Request, ctx: ContextDep, cache: CacheServiceDep) -> Response:
    await cache.clear(ctx, request.headers.get("x-image-cache-clear-target", ""))
    return Response(status_code=204)


@router.post("/clean", **operation(ok=(200, None), errors=(403, 404)))
async def clean_cache(ctx: ContextDep, cache: CacheServiceDep) -> Response:
    await cache.clean(ctx)
    return Response(status_code=200)


@router.post("/prune", **operation(ok=(200, _PRUNED), errors=(403, 404)))
async def prune_cache(ctx: ContextDep, cache: CacheServiceDep) -> JSONResponse:
    return JSONResponse(await cache.prune(ctx))


@router.get("/nodes", **operation(ok=(200, ref("CacheNodes")), errors=(403, 404)))
async def get_cache_nodes(ctx: ContextDep, cache: CacheServiceDep) -> dict[str, Any]:
    """Glimpse: every API node's cache (what it holds, what is queued for it, its counters)."""
    return await cache.nodes_state(ctx)


@router.get("/nodes/{image_id}", **operation(ok=(200, _NODES), errors=(403, 404)))
async def get_cached_nodes(image_id: str, ctx: ContextDep, cache: CacheServiceDep) -> JSONResponse:
    return JSONResponse(await cache.nodes(ctx, image_id))


@router.put("/{image_id}", status_code=202, **operation(ok=(202, None), errors=(400, 403, 404)))
async def queue_image(image_id: str, ctx: ContextDep, cache: CacheServiceDep) -> Response:
    await cache.queue(ctx, image_id)
    return Response(status_code=202)


@router.delete("/{image_id}", status_code=204, **operation(ok=(204, None), errors=(403, 404)))
async def delete_cache_entry(image_id: str, ctx: ContextDep, cache: CacheServiceDep) -> Response:
    await cache.delete(ctx, image_id)
    return Response(status_code=204)
