"""The cache API (/v2/cache, API 2.14-2.18) as Glance 33 serves it: each call acts on the cache
of the API node that got the request, as Glance's does. Queueing, deleting, clearing, cleaning
and pruning on one node leave the other nodes' caches alone; the state is in the database, keyed
by node, so GET /v2/cache/nodes can still show every node. (Deleting or deactivating an image, by
contrast, evicts it from every node: see services/images.py.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Final

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.cache import CacheRepository
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image
from glimpse.domain import policy
from glimpse.domain.errors import InvalidInput, NotFound
from glimpse.domain.images import ImageStatus
from glimpse.services.access import membership
from glimpse.services.image_cache import ImageCache, Loader

log = logging.getLogger(__name__)

CLEAR_TARGETS: Final = ("", "both", "cache", "queue")


@dataclass(frozen=True, slots=True)
class Cleared:
    cache_deleted: int | None
    queue_deleted: int | None


class CacheService:
    def __init__(
        self, settings: Settings, database: Database, cache: ImageCache | None, load: Loader
    ) -> None:
        self.settings = settings
        self.db = database
        self.cache = cache
        self.load = load
        self._tasks: set[asyncio.Task[bool]] = set()

    def _enforce(
        self,
        ctx: RequestContext,
        action: str,
        image: Image | None = None,
        member_status: str | None = None,
    ) -> ImageCache:
        """Glance's order: policy first, then 404 when this site has no cache."""
        policy.enforce(ctx, action, image, member_status=member_status)
        if self.cache is None:
            msg = "Caching via API is not supported at this site."
            raise NotFound(msg)
        return self.cache

    async def _image(self, image_id: str) -> Image | None:
        async with self.db.read() as session:
            return await ImageRepository(session).get(image_id)

    async def _membership(self, ctx: RequestContext, image: Image | None) -> str | None:
        if image is None:
            return None
        async with self.db.read() as session:
            return await membership(ImageRepository(session), ctx, image)

    async def state(self, ctx: RequestContext) -> dict[str, Any]:
        """This node's cached and queued images, in Glance's shape (clients print every key)."""
        cache = self._enforce(ctx, "cache_list")
        node = await cache.node_id()
        async with self.db.read() as session:
            repo = CacheRepository(session)
            entries = await repo.entries(node)
            queued = await repo.queued(node)
        return {"cached_images": [e.as_glance() for e in entries], "queued_images": queued}

    async def nodes_state(self, ctx: RequestContext) -> dict[str, Any]:
        """Every node's cached and queued images and counters (Glimpse's GET /v2/cache/nodes)."""
        cache = self._enforce(ctx, "cache_list")
        await cache.node_id()
        async with self.db.read() as session:
            repo = CacheRepository(session)
            nodes = await repo.nodes()
            entries = await repo.entries()
            queued = {n.node_id: await repo.queued(n.node_id) for n in nodes}
        held: dict[int, list[dict[str, Any]]] = {n.node_id: [] for n in nodes}
        for entry in entries:
            held.setdefault(entry.node_id, []).append(entry.as_glance())
        return {
            "nodes": [
                {
                    "node_reference_url": n.url,
                    "cached_images": held[n.node_id],
                    "queued_images": queued[n.node_id],
                    "counters": n.counters,
                }
                for n in nodes
            ]
        }

    async def queue(self, ctx: RequestContext, image_id: str) -> None:
        """Queue the image on this node, which starts fetching it at once."""
        image = await self._image(image_id)
        if image is None:
            msg = f"Image {image_id} not found."
            raise NotFound(msg)
        cache = self._enforce(ctx, "cache_image", image, await self._membership(ctx, image))
        if image.status != ImageStatus.ACTIVE:
            msg = "Only images with status active can be targeted for queueing"
            raise InvalidInput(msg)
        node = await cache.node_id()
        async with self.db.write() as session:
            await CacheRepository(session).enqueue(image_id, node)
        task = asyncio.create_task(self._prefetch(cache, image_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _prefetch(self, cache: ImageCache, image_id: str) -> bool:
        try:
            return await cache.prefetch(image_id, self.load)
        except Exception:
            log.exception("image %s: prefetch failed", image_id)
            return False

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        """Take the image out of this node's cache and queue."""
        image = await self._image(image_id)
        if image is None and not await self._known_here(image_id):
            # Glance: an image gone from the catalog may still be removed from the cache.
            msg = f"Image {image_id} not found."
            raise NotFound(msg)
        status = await self._membership(ctx, image)
        cache = self._enforce(ctx, "cache_delete", image, status)
        node = await cache.node_id()
        async with self.db.write() as session:
            repo = CacheRepository(session)
            await repo.forget(image_id, node)
            await repo.dequeue(image_id, node)
        await cache.remove_files([image_id])

    async def _known_here(self, image_id: str) -> bool:
        """Whether this node holds the image or has it queued."""
        if self.cache is None:
            return False
        node = await self.cache.node_id()
        async with self.db.read() as session:
            repo = CacheRepository(session)
            return (
                image_id in await repo.queued(node) or await repo.entry(node, image_id) is not None
            )

    async def clear(self, ctx: RequestContext, target: str) -> Cleared:
        """`x-image-cache-clear-target`: cache, queue, or both (empty, or Glimpse's `both`), of
        this node."""
        cache = self._enforce(ctx, "cache_delete")
        target = target.strip().lower()
        if target not in CLEAR_TARGETS:
            msg = (
                "If provided 'x-image-cache-clear-target' must be 'cache', 'queue' or empty string."
            )
            raise InvalidInput(msg)
        node = await cache.node_id()
        cache_deleted = queue_deleted = None
        ids: list[str] = []
        async with self.db.write() as session:
            repo = CacheRepository(session)
            if target != "queue":
                ids = sorted({e.image_id for e in await repo.entries(node)})
                cache_deleted = await repo.forget_all(node)
            if target != "cache":
                queue_deleted = await repo.dequeue_all(node)
        await cache.remove_files(ids)
        return Cleared(cache_deleted, queue_deleted)

    async def nodes(self, ctx: RequestContext, image_id: str) -> list[str]:
        """The nodes whose cache holds the image (GET /v2/cache/nodes/{image_id})."""
        self._enforce(ctx, "list_cached_nodes")
        if await self._image(image_id) is None:
            msg = f"Image {image_id} not found."
            raise NotFound(msg)
        async with self.db.read() as session:
            return await CacheRepository(session).nodes_holding(image_id)

    async def clean(self, ctx: RequestContext) -> None:
        await self._enforce(ctx, "cache_clean").clean()

    async def prune(self, ctx: RequestContext) -> dict[str, int]:
        pruned = await self._enforce(ctx, "cache_prune").prune()
        return {"total_files_pruned": pruned.files, "total_bytes_pruned": pruned.size}

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
