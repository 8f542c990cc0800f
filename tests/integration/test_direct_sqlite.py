"""SQLite reads and writes straight on sqlite3 (glimpse.db.direct_sqlite): the rows and stored
values SQLAlchemy's own execution gives, reads that never write, a held write lock waited for
on a thread, WAL checkpoints on a thread, a lost database answered as unavailable."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from glimpse.db import migrate
from glimpse.db.core import table_of
from glimpse.db.direct_sqlite import CHECKPOINT_EVERY, DirectConnection
from glimpse.db.engine import Database
from glimpse.db.repositories.image_inserts import insert_image, new_image
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.db.tables import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glimpse.domain.errors import DatabaseUnavailable

IMAGE = "11111111-2222-3333-4444-555555555555"
CREATED = datetime(2026, 1, 2, 3, 4, 5)  # noqa: DTZ001 -- naive UTC, as stored


EMPTY = "empty.sqlite"


@pytest.fixture
async def empty_database(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database with no rows, in tmp_path / EMPTY."""
    database = Database.from_url(f"sqlite:///{tmp_path / EMPTY}")
    try:
        await migrate.upgrade(database)
        yield database
    finally:
        await database.dispose()


@pytest.fixture
async def database(tmp_path: Path) -> Database:
    database = Database.from_url(f"sqlite:///{tmp_path / 'direct.sqlite'}")
    await migrate.upgrade(database)
    async with database.write_connection() as connection:
        await connection.execute(
            sa.insert(table_of(Image)),
            {
                "id": IMAGE,
                "name": "shared one",
                "status": "active",
                "visibility": "shared",
                "owner": "owner-project",
                "protected": True,
                "created_at": CREATED,
                "updated_at": CREATED,
                "size": 2**40,
            },
        )
        await connection.execute(
            sa.insert(table_of(ImageProperty)),
            [{"image_id": IMAGE, "name": n, "value": v} for n, v in (("b", "2"), ("a", "1"))],
        )
        await connection.execute(
            sa.insert(table_of(ImageTag)), [{"image_id": IMAGE, "value": t} for t in ("y", "x")]
        )
        await connection.execute(
            sa.insert(table_of(ImageLocation)),
            [
                {
                    "image_id": IMAGE,
                    "value": f"file:///data/{n}",
                    "meta_data": {"store": "fast", "n": str(n)},
                    "status": status,
                    "created_at": CREATED,
                }
                for n, status in ((1, "active"), (2, "pending_delete"), (3, "active"))
            ],
        )
        await connection.execute(
            sa.insert(table_of(ImageMember)),
            {
                "image_id": IMAGE,
                "member": "member-project",
                "status": "accepted",
                "created_at": CREATED,
            },
        )
    yield database
    await database.dispose()


async def test_a_show_reads_what_sqlalchemy_reads(database: Database) -> None:
    async with database.connect() as direct:
        assert isinstance(direct, DirectConnection)
        lookup = ImageLookup(direct)
        record = await lookup.record(IMAGE)
        assert record is not None
        status = await lookup.member_status(record.image, "member-project")
        missing = await lookup.record("00000000-0000-0000-0000-000000000000")
    async with database.read_connection() as connection:
        expected_lookup = ImageLookup(connection)
        expected = await expected_lookup.record(IMAGE)
        assert expected is not None
        expected_status = await expected_lookup.member_status(expected.image, "member-project")

    assert missing is None
    assert status == expected_status == "accepted"
    assert record.image.__dict__.keys() == expected.image.__dict__.keys()
    for key, value in expected.image.__dict__.items():
        if not key.startswith("_"):
            assert (key, record.image.__dict__[key]) == (key, value)
            assert type(record.image.__dict__[key]) is type(value)
    assert record.image.created_at == CREATED
    assert record.image.protected is True
    assert record.properties == expected.properties == {"b": "2", "a": "1"}
    assert record.tags == expected.tags == ["y", "x"]
    assert [loc.model_dump() for loc in record.locations] == [
        loc.model_dump() for loc in expected.locations
    ]
    assert [loc.meta_data for loc in record.locations] == [
        {"store": "fast", "n": "1"},
        {"store": "fast", "n": "3"},
    ]


async def test_a_direct_read_never_writes(database: Database) -> None:
    with pytest.raises(DatabaseUnavailable) as refused:
        async with database.connect() as direct:
            await direct.execute(sa.delete(table_of(ImageTag)), {})
    cause = refused.value.__cause__
    assert isinstance(cause, sa.exc.OperationalError)
    assert isinstance(cause.orig, sqlite3.OperationalError)
    assert "readonly" in str(cause.orig)
    async with database.connect() as direct:  # the connection is still good
        rows = await direct.execute(sa.select(table_of(ImageTag).c.value), {})
    assert sorted(row[0] for row in rows) == ["x", "y"]


async def test_a_missing_database_is_unavailable(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path / 'absent' / 'gone.sqlite'}")
    (tmp_path / "absent").rmdir()
    try:
        with pytest.raises(DatabaseUnavailable):
            async with database.connect() as direct:
                await direct.execute(sa.select(table_of(Image).c.id), {})
    finally:
        await database.dispose()


def _raw_rows(path: Path, table: str) -> list[tuple[object, ...]]:
    """The rows as SQLite stores them (no type processing), without their ids."""
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()  # noqa: S608 -- our names
    return [row[1:] if table != "images" else row for row in rows]


async def test_a_direct_create_stores_what_sqlalchemy_stores(
    empty_database: Database, tmp_path: Path
) -> None:
    path = tmp_path / EMPTY
    database = empty_database
    written = []
    for index, opening in enumerate((database.core_write, database.write_connection)):
        image = new_image(
            id=f"00000000-0000-0000-0000-00000000000{index}",
            status="queued",
            visibility="shared",
            owner="p",
            protected=True,
            created_at=CREATED,
            updated_at=CREATED,
        )
        async with opening() as connection:
            written.append(type(connection))
            assert await insert_image(connection, image, {"a": "1", "b": "2"}, ["t"])
        async with opening() as connection:  # its id again: refused, nothing written
            assert not await insert_image(connection, image, {"c": "3"}, [])
    assert written == [DirectConnection, AsyncConnection]
    images = _raw_rows(path, "images")
    assert [row[1:] for row in images[:1]] == [row[1:] for row in images[1:]]
    assert "2026-01-02 03:04:05.000000" in images[0]
    properties = _raw_rows(path, "image_properties")
    assert [row[1:] for row in properties[:2]] == [row[1:] for row in properties[2:]]
    assert len(properties) == 4
    assert len(_raw_rows(path, "image_tags")) == 2


async def test_a_direct_write_gives_way_to_a_held_write_lock(
    empty_database: Database, tmp_path: Path
) -> None:
    path = tmp_path / EMPTY
    database = empty_database
    image = new_image(id=IMAGE, status="queued", visibility="shared", created_at=CREATED)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")

    async def create() -> type:
        async with database.core_write() as connection:
            assert await insert_image(connection, image, {}, [])
            return type(connection)

    task = asyncio.create_task(create())
    await asyncio.sleep(0.2)  # it waits for the lock on a thread, not on the loop
    assert not task.done()
    holder.execute("ROLLBACK")
    holder.close()
    assert await task is AsyncConnection
    async with database.connect() as direct:
        rows = await direct.execute(sa.select(table_of(Image).c.id), {})
    assert [row[0] for row in rows] == [IMAGE]


async def test_direct_writes_hand_the_wal_checkpoint_to_a_thread(
    empty_database: Database, tmp_path: Path
) -> None:
    path = tmp_path / EMPTY
    database = empty_database
    for index in range(CHECKPOINT_EVERY):
        image = new_image(
            id=f"00000000-0000-0000-0000-{index:012d}",
            status="queued",
            visibility="shared",
            created_at=CREATED,
        )
        async with database.core_write() as connection:
            assert isinstance(connection, DirectConnection)
            await insert_image(connection, image, {"k": "v" * 2000}, [])
    writes = database.direct_writes
    assert writes is not None
    checkpoint = writes._checkpoint  # noqa: SLF001 -- the one handed to a thread
    assert checkpoint is not None
    await checkpoint
    with sqlite3.connect(path) as connection:
        busy, logged, done = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    assert (busy, logged, done) == (0, logged, logged)
    assert logged > 0
