"""The tables emptied between PostgreSQL tests are every table the migrations create, except
Alembic's bookkeeping, in an order the foreign keys allow."""

from __future__ import annotations

import asyncio

import asyncpg

from support import MIGRATION_TABLES, data_tables

FOREIGN_KEYS = """
SELECT child.relname AS child, parent.relname AS parent
FROM pg_constraint JOIN pg_class child ON child.oid = conrelid
JOIN pg_class parent ON parent.oid = confrelid
WHERE contype = 'f' AND conrelid <> confrelid
"""


async def _schema(url: str) -> tuple[set[str], list[tuple[str, str]]]:
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
        keys = await connection.fetch(FOREIGN_KEYS)
    finally:
        await connection.close()
    return {row["tablename"] for row in tables}, [(row["child"], row["parent"]) for row in keys]


def test_every_migrated_table_but_alembic_version_is_emptied_children_first(
    pg_template: str,
) -> None:
    migrated, foreign_keys = asyncio.run(_schema(pg_template))
    emptied = data_tables()
    assert "alembic_version" in migrated
    assert migrated - set(emptied) == MIGRATION_TABLES
    assert set(emptied) <= migrated
    assert foreign_keys, "the schema has foreign keys to order by"
    for child, parent in foreign_keys:
        assert emptied.index(child) < emptied.index(parent), (child, parent)
