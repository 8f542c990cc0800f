"""SQLite reads straight from sqlite3 (glimpse.db.direct_sqlite): the rows SQLAlchemy's own
execution gives, read-only, and a lost database answered as unavailable."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from glimpse.db import migrate
from glimpse.db.core import table_of
from glimpse.db.direct_sqlite import DirectConnection
from glimpse.db.engine import Database
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.db.tables import Image, ImageLocation, ImageMember, ImageProperty, ImageTag
from glimpse.domain.errors import DatabaseUnavailable

IMAGE = "11111111-2222-3333-4444-555555555555"
CREATED = datetime(2026, 1, 2, 3, 4, 5)  # noqa: DTZ001 -- naive UTC, as stored


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
