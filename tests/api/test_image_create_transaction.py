"""POST /v2/images writes the image, its properties and its tags in one transaction: a failure
between those inserts (the database lost, or an error) leaves no row behind, answers as any
lost database does (503 in Glance's format), returns its connection, and the id stays free;
creates racing on one id answer 201 once and 409 for the others, never 500."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest.mock import patch

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine

from glimpse.config import Settings
from glimpse.db.direct_sqlite import DirectConnection
from glimpse.db.engine import Database
from glimpse.db.tables import Image, utcnow
from relay import relay_to
from support import assert_unavailable

BODY = {"disk_format": "raw", "container_format": "bare", "name": "n", "os_distro": "x"}


@contextmanager
def failing_property_insert(fail: Callable[[Any], None]) -> Iterator[list[str]]:
    """Every INSERT into image_properties first calls `fail(dialect)`, whether SQLAlchemy's
    engine or a direct connection (glimpse.db.direct_sqlite) runs it; the statements seen so
    far are yielded (to show the image's insert came first)."""
    seen: list[str] = []

    def before(connection: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement.split("(", 1)[0].strip())
        if statement.startswith("INSERT INTO image_properties"):
            fail(connection.dialect)

    run = DirectConnection.run

    def direct_run(self: DirectConnection, statement: Any, parameters: Any) -> Any:
        text = str(statement.compile(dialect=self.dialect))
        seen.append(text.split("(", 1)[0].strip())
        if text.startswith("INSERT INTO image_properties"):
            try:
                fail(self.dialect)
            except sqlite3.Error as error:  # raised out of sqlite3 as the direct path does
                raise sa.exc.DBAPIError.instance(text, parameters, error, sqlite3.Error) from error
        return run(self, statement, parameters)

    event.listen(Engine, "before_cursor_execute", before)
    try:
        with patch.object(DirectConnection, "run", direct_run):
            yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", before)


def driver_error(dialect: Any) -> None:
    """What a driver raises when its database fails under a statement (an I/O error)."""
    if dialect.name == "sqlite":
        raise sqlite3.OperationalError("disk I/O error")
    raise dialect.loaded_dbapi.OperationalError("disk I/O error")


async def rows_of(database: Database, image_id: str) -> dict[str, int]:
    counts = {}
    async with database.read() as session:
        for table in ("images", "image_properties", "image_tags"):
            column = "id" if table == "images" else "image_id"
            statement = sa.text(f"SELECT count(*) FROM {table} WHERE {column} = :id")  # noqa: S608 -- our names
            counts[table] = int((await session.execute(statement, {"id": image_id})).scalar_one())
    return counts


def checked_out(client: httpx.AsyncClient) -> int:
    """Connections the app's writer pool has handed out and not had back."""
    app = client._transport.app  # type: ignore[attr-defined]  # noqa: SLF001 -- the ASGI app under test
    pool = app.state.runtime.database.writer_engine.pool
    return int(pool.checkedout())


async def test_a_failure_after_the_image_insert_leaves_nothing_and_answers_503(
    client: httpx.AsyncClient, database: Database
) -> None:
    image_id = str(uuid.uuid4())
    body = {**BODY, "id": image_id, "tags": ["a", "b"]}
    with failing_property_insert(driver_error) as seen:
        response = await client.post("/v2/images", json=body)
    assert_unavailable(response)
    assert "INSERT INTO images" in seen  # the failure came after the image's own row
    assert await rows_of(database, image_id) == {
        "images": 0,
        "image_properties": 0,
        "image_tags": 0,
    }
    # Every connection goes back to its pool; the start-up sweep's may still be out as the
    # answer arrives (a create on SQLite takes none); a leaked one never comes back.
    async with asyncio.timeout(10):
        while checked_out(client):  # noqa: ASYNC110 -- the pool has no event to wait on
            await asyncio.sleep(0.05)
    # The id was never used: taking it again succeeds, with everything.
    created = await client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    assert created.json()["os_distro"] == "x"
    assert sorted(created.json()["tags"]) == ["a", "b"]
    assert await rows_of(database, image_id) == {
        "images": 1,
        "image_properties": 1,
        "image_tags": 2,
    }


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("trouble", ["down", "hang"])
async def test_the_database_lost_mid_create_leaves_nothing_and_answers_503(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    database_url: str,
    database: Database,
    trouble: str,
) -> None:
    host, port = database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    with relay_to(host, int(port)) as relay:
        url = database_url.replace(f"@{host}:{port}/", f"@{relay.address}/", 1)
        settings = make_settings(
            database={"connection": url, "command_timeout": 2, "pool_timeout": 2}
        )
        client: httpx.AsyncClient = await client_for(settings)
        image_id = str(uuid.uuid4())

        with failing_property_insert(lambda _dialect: getattr(relay, trouble)()):
            async with asyncio.timeout(20):
                response = await client.post("/v2/images", json={**BODY, "id": image_id})
        assert_unavailable(response)
        relay.down()
        relay.up()
        assert await rows_of(database, image_id) == {
            "images": 0,
            "image_properties": 0,
            "image_tags": 0,
        }
        assert checked_out(client) == 0
        created = await client.post("/v2/images", json={**BODY, "id": image_id})
        assert created.status_code == 201, created.text


async def test_creates_racing_on_one_id_answer_201_once_and_409_for_the_rest(
    client_for: Callable[[Settings], Any], settings: Settings, database: Database
) -> None:
    # Two nodes (each its own pool) so the inserts run on separate connections at once.
    nodes = [await client_for(settings), await client_for(settings)]
    image_id = str(uuid.uuid4())
    body = {**BODY, "id": image_id, "tags": ["t"]}
    answers = await asyncio.gather(
        *(nodes[index % 2].post("/v2/images", json=body) for index in range(6))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409, 409, 409, 409, 409], [a.text for a in answers]
    conflict = next(answer for answer in answers if answer.status_code == 409)
    assert conflict.json()["message"] == f"Image with identifier {image_id} already exists!"
    assert await rows_of(database, image_id) == {
        "images": 1,
        "image_properties": 1,
        "image_tags": 1,
    }
    # Every connection goes back to its pool. On SQLite one may still be on its way back as the
    # answers arrive (about one run in seven); a leaked one never comes back.
    async with asyncio.timeout(10):
        while any(checked_out(node) for node in nodes):  # noqa: ASYNC110 -- no pool event to wait on
            await asyncio.sleep(0.05)
    assert [checked_out(node) for node in nodes] == [0, 0]


async def test_a_create_cancelled_while_it_waits_returns_its_connection_clean(
    client: httpx.AsyncClient, database: Database
) -> None:
    """The request is cancelled (its client gone, the server stopping) while its transaction
    waits: on PostgreSQL for another transaction's row with the same id, on SQLite for the
    write lock. Its connection goes back to the pool without a transaction left open, and the
    next creates (the same id included) go through."""
    image_id = str(uuid.uuid4())
    async with database.writer_engine.connect() as other:
        transaction = await other.begin()
        await other.execute(
            sa.insert(Image.__table__),  # type: ignore[attr-defined] -- SQLModel's table
            {"id": image_id, "status": "queued", "visibility": "private", "created_at": utcnow()},
        )
        pending = asyncio.create_task(client.post("/v2/images", json={**BODY, "id": image_id}))
        await asyncio.sleep(0.5)
        assert not pending.done()
        pending.cancel()
        # Let go first: on SQLite the cancelled request's rollback queues behind its BEGIN.
        await transaction.rollback()
    async with asyncio.timeout(10):
        with pytest.raises(asyncio.CancelledError):
            await pending
        while checked_out(client):  # noqa: ASYNC110 -- the pool has no event to wait on
            await asyncio.sleep(0.05)
        for _ in range(3):  # every pooled connection, the one cancelled among them
            created = await client.post("/v2/images", json=BODY)
            assert created.status_code == 201, created.text
        again = await client.post("/v2/images", json={**BODY, "id": image_id})
        assert again.status_code == 201, again.text
    assert (await rows_of(database, image_id))["images"] == 1


async def test_the_create_answer_is_the_image_as_shown_afterwards(
    client: httpx.AsyncClient,
) -> None:
    """The answer is built from what was written, not read back: it must still be exactly
    what a show gives (defaults, properties and tags in their order, times)."""
    body = {
        **BODY,
        "tags": ["z", "a", "z", "m"],
        "min_ram": 512,
        "protected": True,
        "os_hidden": True,
        "visibility": "community",
        "zeta": "1",
        "alpha": "",
    }
    created = await client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    shown = await client.get(f"/v2/images/{created.json()['id']}")
    assert created.json() == shown.json()
    assert shown.json()["tags"] == ["z", "a", "m"]
    assert (shown.json()["zeta"], shown.json()["alpha"]) == ("1", "")
