"""The image cache's state: nodes, what each node holds, what each node has queued. Never
commits; callers own the transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import rowcount, table_of
from glimpse.db.tables import CachedImage, CacheQueue, Image, NodeReference

_NODES = table_of(NodeReference)
_CACHED = table_of(CachedImage)
_QUEUE = table_of(CacheQueue)
_IMAGES = table_of(Image)
COUNTERS = ("hits", "misses", "bytes_served", "fills", "evictions")


def now() -> datetime:
    """Naive UTC with microseconds: least-recently-used order needs more than seconds."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class CachedEntry:
    image_id: str
    node_id: int
    size: int
    checksum: str | None
    hits: int
    last_accessed: datetime
    last_modified: datetime
    row_id: int

    def as_glance(self) -> dict[str, Any]:
        """Glance's cached image record (timestamps as epoch seconds)."""
        return {
            "id": self.row_id,
            "image_id": self.image_id,
            "last_accessed": self.last_accessed.replace(tzinfo=UTC).timestamp(),
            "last_modified": self.last_modified.replace(tzinfo=UTC).timestamp(),
            "size": self.size,
            "hits": self.hits,
            "checksum": self.checksum,
        }


@dataclass(frozen=True, slots=True)
class Node:
    node_id: int
    url: str
    counters: dict[str, int]
    seen_at: datetime | None


def _entry(row: Any) -> CachedEntry:  # noqa: ANN401 -- a Row of _CACHED
    return CachedEntry(
        image_id=row.image_id,
        node_id=row.node_reference_id,
        size=row.size,
        checksum=row.checksum,
        hits=row.hits,
        last_accessed=row.last_accessed,
        last_modified=row.last_modified,
        row_id=row.id,
    )


class CacheRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _insert(self, table: sa.Table) -> Any:  # noqa: ANN401 -- a dialect's Insert
        dialect = self.session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    # -- nodes -----------------------------------------------------------------------------

    async def register_node(self, url: str) -> int:
        """This node's id, its row made the first time."""
        zeros = dict.fromkeys(COUNTERS, 0)
        await self.session.execute(
            self._insert(_NODES)
            .values(node_reference_url=url, seen_at=now(), **zeros)
            .on_conflict_do_update(index_elements=["node_reference_url"], set_={"seen_at": now()})
        )
        statement = sa.select(_NODES.c.node_reference_id).where(_NODES.c.node_reference_url == url)
        return int((await self.session.execute(statement)).scalar_one())

    async def nodes(self) -> list[Node]:
        rows = await self.session.execute(sa.select(_NODES).order_by(_NODES.c.node_reference_url))
        return [
            Node(
                r.node_reference_id,
                r.node_reference_url,
                {name: getattr(r, name) for name in COUNTERS},
                r.seen_at,
            )
            for r in rows
        ]

    async def count(self, node_id: int, **increments: int) -> None:
        """Add to this node's counters (hits=1, bytes_served=n...)."""
        values = {name: _NODES.c[name] + amount for name, amount in increments.items() if amount}
        if values:
            await self.session.execute(
                sa.update(_NODES).where(_NODES.c.node_reference_id == node_id).values(values)
            )

    # -- cached images ---------------------------------------------------------------------

    async def entry(self, node_id: int, image_id: str) -> CachedEntry | None:
        row = (
            await self.session.execute(
                sa.select(_CACHED).where(
                    _CACHED.c.node_reference_id == node_id, _CACHED.c.image_id == image_id
                )
            )
        ).first()
        return None if row is None else _entry(row)

    async def entries(self, node_id: int | None = None) -> list[CachedEntry]:
        """What `node_id` holds (every node's rows when None), oldest access first."""
        statement = sa.select(_CACHED).order_by(_CACHED.c.last_accessed, _CACHED.c.id)
        if node_id is not None:
            statement = statement.where(_CACHED.c.node_reference_id == node_id)
        return [_entry(row) for row in await self.session.execute(statement)]

    async def nodes_holding(self, image_id: str) -> list[str]:
        statement = (
            sa.select(_NODES.c.node_reference_url)
            .join(_CACHED, _CACHED.c.node_reference_id == _NODES.c.node_reference_id)
            .where(_CACHED.c.image_id == image_id)
            .order_by(_NODES.c.node_reference_url)
        )
        return list((await self.session.execute(statement)).scalars())

    async def record_fill(
        self, node_id: int, image_id: str, size: int, checksum: str | None
    ) -> bool:
        """Record that this node holds the image's verified data; False (nothing recorded) if
        the image is no longer active, so a fill that raced a delete or a deactivation is never
        served."""
        active = (
            await self.session.execute(
                sa.select(_IMAGES.c.id).where(
                    _IMAGES.c.id == image_id,
                    _IMAGES.c.status == "active",
                    _IMAGES.c.deleted.is_(False),
                )
            )
        ).first()
        if active is None:
            return False
        stamp = now()
        values = {"last_accessed": stamp, "last_modified": stamp, "size": size}
        await self.session.execute(
            self._insert(_CACHED)
            .values(
                image_id=image_id, node_reference_id=node_id, hits=0, checksum=checksum, **values
            )
            .on_conflict_do_update(
                index_elements=["image_id", "node_reference_id"],
                set_={**values, "checksum": checksum},
            )
        )
        await self.session.execute(
            sa.delete(_QUEUE).where(
                _QUEUE.c.image_id == image_id, _QUEUE.c.node_reference_id == node_id
            )
        )
        await self.count(node_id, fills=1)
        return True

    async def touch(self, node_id: int, image_id: str) -> None:
        """A hit: one more, accessed now."""
        await self.session.execute(
            sa.update(_CACHED)
            .where(_CACHED.c.node_reference_id == node_id, _CACHED.c.image_id == image_id)
            .values(hits=_CACHED.c.hits + 1, last_accessed=now())
        )

    async def forget(self, image_id: str, node_id: int | None = None) -> int:
        """Drop the image's cache rows (on every node when `node_id` is None), counting an
        eviction for each node that held it; how many rows went."""
        where = [_CACHED.c.image_id == image_id]
        if node_id is not None:
            where.append(_CACHED.c.node_reference_id == node_id)
        holders = sa.select(_CACHED.c.node_reference_id).where(*where)
        await self.session.execute(
            sa.update(_NODES)
            .where(_NODES.c.node_reference_id.in_(holders))
            .values(evictions=_NODES.c.evictions + 1)
        )
        result = await self.session.execute(sa.delete(_CACHED).where(*where))
        return rowcount(result)

    async def forget_all(self, node_id: int) -> int:
        """Every cached row of one node; how many."""
        held = sa.select(sa.func.count()).where(_CACHED.c.node_reference_id == node_id)
        await self.session.execute(
            sa.update(_NODES)
            .where(_NODES.c.node_reference_id == node_id)
            .values(evictions=_NODES.c.evictions + held.scalar_subquery())
        )
        result = await self.session.execute(
            sa.delete(_CACHED).where(_CACHED.c.node_reference_id == node_id)
        )
        return rowcount(result)

    # -- the prefetch queue ----------------------------------------------------------------

    async def enqueue(self, image_id: str, node_id: int) -> bool:
        """Queue the image for one node's prefetcher unless that node holds it or has it
        queued already (Glance's queue_image); whether it was queued."""
        if await self.entry(node_id, image_id) is not None:
            return False
        result = await self.session.execute(
            self._insert(_QUEUE)
            .values(image_id=image_id, node_reference_id=node_id, queued_at=now())
            .on_conflict_do_nothing()
        )
        return rowcount(result) > 0

    async def queued(self, node_id: int | None = None) -> list[str]:
        """Queued image ids, oldest first (of one node, or of any node once each)."""
        first = sa.func.min(_QUEUE.c.queued_at)
        statement = sa.select(_QUEUE.c.image_id).group_by(_QUEUE.c.image_id).order_by(first)
        if node_id is not None:
            statement = statement.where(_QUEUE.c.node_reference_id == node_id)
        return list((await self.session.execute(statement)).scalars())

    async def dequeue(self, image_id: str, node_id: int | None = None) -> int:
        where = [_QUEUE.c.image_id == image_id]
        if node_id is not None:
            where.append(_QUEUE.c.node_reference_id == node_id)
        result = await self.session.execute(sa.delete(_QUEUE).where(*where))
        return rowcount(result)

    async def dequeue_all(self, node_id: int) -> int:
        """Empty one node's queue; how many went."""
        result = await self.session.execute(
            sa.delete(_QUEUE).where(_QUEUE.c.node_reference_id == node_id)
        )
        return rowcount(result)

    async def evict(self, image_id: str) -> None:
        """The image was deleted or deactivated: no node may serve it from its cache, and no
        prefetcher fetch it."""
        await self.forget(image_id)
        await self.dequeue(image_id)
