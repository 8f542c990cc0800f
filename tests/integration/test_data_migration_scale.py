"""`glimpse-manage db migrate` on a large table: 100,000 locations of the pre-Train shape are
rewritten in batches while other sessions keep writing to the same tables with a 1 s lock
timeout, so a batch that held a table lock longer than a second would make them fail."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import sqlalchemy as sa

from glimpse.db import data_migrations, migrate
from glimpse.db.engine import Database
from glimpse.db.migrate import Phase

ROWS = 100_000


async def fill(database: Database) -> None:
    async with database.writer_engine.begin() as connection:
        await connection.execute(
            sa.text(
                "INSERT INTO images (id, status, visibility, min_disk, min_ram, protected,"
                " os_hidden, created_at, deleted)"
                " SELECT 'legacy-' || n, 'active', 'private', 0, 0, false, false, now(), false"
                " FROM generate_series(1, :rows) AS n"
            ),
            {"rows": ROWS},
        )
        await connection.execute(
            sa.text(
                "INSERT INTO image_locations (image_id, value, meta_data, status, created_at,"
                " attempts)"
                " SELECT 'legacy-' || n, 'file:///srv/images/legacy-' || n,"
                " CAST('{\"backend\": \"fast\"}' AS json), 'active', now(), 0"
                " FROM generate_series(1, :rows) AS n"
            ),
            {"rows": ROWS},
        )


async def keep_writing(dsn: str, stop: asyncio.Event) -> tuple[int, list[str]]:
    """New images and locations, and updates of the new rows, as API nodes would make while
    the migration runs; each statement may wait at most 1 s for a lock."""
    connection = await asyncpg.connect(dsn)
    done, failures = 0, []
    try:
        await connection.execute("SET lock_timeout = '1s'")
        while not stop.is_set():
            image_id = f"live-{done}"
            try:
                async with connection.transaction():
                    await connection.execute(
                        "INSERT INTO images (id, status, visibility, min_disk, min_ram,"
                        " protected, os_hidden, created_at, deleted) VALUES"
                        " ($1, 'queued', 'private', 0, 0, false, false, now(), false)",
                        image_id,
                    )
                    await connection.execute(
                        "INSERT INTO image_locations (image_id, value, meta_data, status,"
                        ' created_at, attempts) VALUES ($1, $2, \'{"store": "fast"}\','
                        " 'active', now(), 0)",
                        image_id,
                        f"file:///srv/images/{image_id}",
                    )
                    await connection.execute(
                        "UPDATE images SET status = 'active', updated_at = now() WHERE id = $1",
                        image_id,
                    )
            except asyncpg.PostgresError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
            done += 1
            await asyncio.sleep(0.01)
    finally:
        await connection.close()
    return done, failures


async def test_migrate_rewrites_100000_rows_in_batches_while_writes_go_on(empty_pg: str) -> None:
    database = Database.from_url(empty_pg, pool_size=2)
    try:
        expand_head = migrate.branch_head(Phase.EXPAND)
        assert expand_head is not None
        await migrate.upgrade(database, expand_head)
        await fill(database)
        assert await data_migrations.pending(database) == ["location_store_key"]
        stop = asyncio.Event()
        writer = asyncio.create_task(keep_writing(empty_pg, stop))
        started = time.perf_counter()
        done = await data_migrations.run(database, batch_size=1000)
        seconds = time.perf_counter() - started
        stop.set()
        writes, failures = await writer
        assert done == {"location_store_key": ROWS}
        assert failures == []
        assert writes > 0
        assert await data_migrations.pending(database) == []
        async with database.reader_engine.connect() as connection:
            shapes = (
                await connection.execute(
                    sa.text(
                        "SELECT CAST(meta_data AS text), count(*) FROM image_locations"
                        " WHERE image_id LIKE 'legacy-%' GROUP BY 1"
                    )
                )
            ).all()
        assert [(shape.replace(" ", ""), count) for shape, count in shapes] == [
            ('{"store":"fast"}', ROWS)
        ]
        # The figures for the record (not asserted: timings vary with the machine).
        print(f"\nmigrated {ROWS} rows in {seconds:.1f} s; {writes} concurrent writes, 0 failed")  # noqa: T201 -- the figure is the report
    finally:
        await database.dispose()
