"""The TRUNCATE that empties PostgreSQL between tests covers every table the migrations create,
except Alembic's bookkeeping."""

from __future__ import annotations

import asyncio

import asyncpg

from support import MIGRATION_TABLES, TRUNCATE_ALL


async def _public_tables(url: str) -> set[str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await connection.close()
    return {row["tablename"] for row in rows}


def test_truncate_covers_every_migrated_table_but_alembic_version(pg_template: str) -> None:
    migrated = asyncio.run(_public_tables(pg_template))
    truncated = set(TRUNCATE_ALL.removeprefix("TRUNCATE ").removesuffix(" CASCADE").split(", "))
    assert "alembic_version" in migrated
    assert migrated - truncated == MIGRATION_TABLES
    assert truncated <= migrated
