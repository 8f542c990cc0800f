"""Data migrations: `glimpse-manage db migrate` moves rows to the shape the new code reads,
between expand and contract, while both old and new code serve.

Each migration works in batches, each batch its own short transaction that locks only the rows
it rewrites (never a table), so API nodes go on serving throughout; it can stop anywhere and
run again. A migration is pending while a row of the old shape is left.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from glimpse.db.engine import Database

DEFAULT_BATCH = 1000
LEGACY_STORE_KEY = "backend"
_LOCATIONS = sa.table(
    "image_locations", sa.column("id", sa.Integer), sa.column("meta_data", sa.JSON)
)


@dataclass(frozen=True, slots=True)
class DataMigration:
    name: str
    pending: Callable[[AsyncConnection], Awaitable[bool]]
    batch: Callable[[AsyncConnection, int, int], Awaitable[tuple[int, int | None]]]
    """One batch after the row id given: (rows rewritten, last id seen or None at the end)."""


def _legacy_candidates(after: int, limit: int) -> sa.Select[Any]:
    # A text match narrows the scan; the JSON is checked row by row below.
    text = sa.cast(_LOCATIONS.c.meta_data, sa.Text)
    return (
        sa.select(_LOCATIONS.c.id, _LOCATIONS.c.meta_data)
        .where(_LOCATIONS.c.id > after, text.like(f'%"{LEGACY_STORE_KEY}"%'))
        .order_by(_LOCATIONS.c.id)
        .limit(limit)
    )


def _metadata(value: object) -> dict[str, Any]:
    data = json.loads(value) if isinstance(value, str) else value
    return data if isinstance(data, dict) else {}


async def _legacy_pending(connection: AsyncConnection) -> bool:
    rows = (await connection.execute(_legacy_candidates(0, DEFAULT_BATCH))).all()
    after = 0
    while rows:
        if any(LEGACY_STORE_KEY in _metadata(meta) for _, meta in rows):
            return True
        after = rows[-1][0]
        rows = (await connection.execute(_legacy_candidates(after, DEFAULT_BATCH))).all()
    return False


async def _legacy_batch(
    connection: AsyncConnection, after: int, size: int
) -> tuple[int, int | None]:
    """Train's rename: location metadata `{"backend": id}` becomes `{"store": id}` (the new
    code reads both, so old and new nodes agree throughout)."""
    rows = (await connection.execute(_legacy_candidates(after, size))).all()
    if not rows:
        return 0, None
    updates = []
    for row_id, meta in rows:
        metadata = _metadata(meta)
        if LEGACY_STORE_KEY not in metadata:
            continue
        store = metadata.pop(LEGACY_STORE_KEY)
        metadata.setdefault("store", store)
        updates.append({"row_id": row_id, "meta": metadata})
    if updates:
        statement = (
            sa.update(_LOCATIONS)
            .where(_LOCATIONS.c.id == sa.bindparam("row_id"))
            .values(meta_data=sa.bindparam("meta", type_=sa.JSON))
        )
        await connection.execute(statement, updates)
    return len(updates), rows[-1][0]


MIGRATIONS: tuple[DataMigration, ...] = (
    DataMigration("location_store_key", _legacy_pending, _legacy_batch),
)


async def pending(database: Database) -> list[str]:
    """The names of the data migrations with rows left to move."""
    async with database.reader_engine.connect() as connection:
        return [m.name for m in MIGRATIONS if await m.pending(connection)]


async def run(database: Database, batch_size: int = DEFAULT_BATCH) -> dict[str, int]:
    """Run every data migration to the end; rows rewritten by each."""
    done: dict[str, int] = {}
    for migration in MIGRATIONS:
        total, after = 0, 0
        while True:
            async with database.writer_engine.begin() as connection:
                rewritten, last = await migration.batch(connection, after, batch_size)
            total += rewritten
            if last is None:
                break
            after = last
        done[migration.name] = total
    return done
