"""The database lost or hung: the API answers 503 with Retry-After in Glance's error format,
within the bound the database options set, writes nothing half-way, and works again once the
database is back. Real PostgreSQL behind a TCP relay (tests/relay.py) that refuses connections
or accepts them and forwards nothing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import UTC
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image
from glimpse.services.housekeeping import Housekeeping
from glimpse.stores.registry import StoreRegistry
from relay import Relay, relay_to
from support import assert_unavailable

OCTET = {"Content-Type": "application/octet-stream"}
TIMEOUT = 2  # [database] command_timeout and pool_timeout of these tests, in seconds
# Pre-ping, reconnection and rollback each get TIMEOUT at most: well past their sum is a hang.
BOUND = 10 * TIMEOUT

pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)


def through(relay: Relay, database_url: str) -> str:
    """The test database's URL, reached through the relay."""
    host_and_port = database_url.split("@", 1)[1].split("/", 1)[0]
    return database_url.replace(f"@{host_and_port}/", f"@{relay.address}/", 1)


async def bounded(request: Coroutine[Any, Any, httpx.Response]) -> httpx.Response:
    async with asyncio.timeout(BOUND):
        response: httpx.Response = await request
        return response


@pytest.mark.parametrize("trouble", ["refused", "hung"])
async def test_database_trouble_is_a_bounded_503_and_nothing_is_half_written(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    database_url: str,
    trouble: str,
) -> None:
    host, port = database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    with relay_to(host, int(port)) as relay:
        settings = make_settings(
            database={
                "connection": through(relay, database_url),
                "command_timeout": TIMEOUT,
                "pool_timeout": TIMEOUT,
            }
        )
        client: httpx.AsyncClient = await client_for(settings)
        body = {"disk_format": "raw", "container_format": "bare", "name": "before"}
        created = await client.post("/v2/images", json=body)
        assert created.status_code == 201
        image_id = created.json()["id"]

        if trouble == "refused":
            relay.down()
        else:
            relay.hang()
        assert_unavailable(await bounded(client.get("/v2/images")))
        assert_unavailable(await bounded(client.get(f"/v2/images/{image_id}")))
        assert_unavailable(
            await bounded(client.post("/v2/images", json={**body, "name": "during"}))
        )
        upload = client.put(f"/v2/images/{image_id}/file", content=b"x" * 4096, headers=OCTET)
        assert_unavailable(await bounded(upload))
        datadir = settings.store_datadir("file")
        assert not datadir.exists() or list(datadir.iterdir()) == []

        # Back: nothing of the failed requests was written, and everything works.
        relay.down()
        relay.up()
        listed = await bounded(client.get("/v2/images"))
        assert listed.status_code == 200
        assert [image["name"] for image in listed.json()["images"]] == ["before"]
        assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
        put = await client.put(f"/v2/images/{image_id}/file", content=b"y" * 4096, headers=OCTET)
        assert put.status_code == 204, put.text
        assert (await client.get(f"/v2/images/{image_id}/file")).content == b"y" * 4096


async def test_an_upload_whose_failure_cannot_be_recorded_is_taken_back_after_its_lease(
    client_for: Callable[[Settings], Any],
    make_settings: Callable[..., Settings],
    database_url: str,
    database: Database,
) -> None:
    """The database goes away while the data streams: the upload fails (503), its data is
    removed, but handing the image back (saving -> queued) fails too. The image stays saving
    until its lease runs out; then housekeeping takes it back and a new upload succeeds."""
    host, port = database_url.split("@", 1)[1].split("/", 1)[0].split(":")
    with relay_to(host, int(port)) as relay:
        settings = make_settings(
            database={
                "connection": through(relay, database_url),
                "command_timeout": TIMEOUT,
                "pool_timeout": TIMEOUT,
            }
        )
        client: httpx.AsyncClient = await client_for(settings)
        body = {"disk_format": "raw", "container_format": "bare", "name": "stuck"}
        image_id = (await client.post("/v2/images", json=body)).json()["id"]

        async def chunks() -> AsyncIterator[bytes]:
            yield b"a" * 65536  # read once the image is claimed (saving)
            relay.down()
            yield b"b" * 65536

        upload = client.put(f"/v2/images/{image_id}/file", content=chunks(), headers=OCTET)
        assert_unavailable(await bounded(upload))
        relay.up()
        datadir = settings.store_datadir("file")
        assert list(datadir.iterdir()) == []  # neither the data nor a partial file
        async with database.read() as session:
            row = (await session.execute(sa.select(Image).where(Image.id == image_id))).scalar_one()
        assert row.status == "saving"
        assert row.upload_lease_until is not None

        stores = StoreRegistry.from_settings(settings)
        try:
            # Within the lease: left alone (it might be a live upload on another node).
            assert await Housekeeping(settings, database, stores).reclaim_uploads() == []
            after_lease = row.upload_lease_until.replace(tzinfo=UTC).timestamp() + 1
            later = Housekeeping(settings, database, stores, clock=lambda: after_lease)
            assert await later.reclaim_uploads() == [image_id]
        finally:
            await stores.aclose()
        assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
        put = await client.put(f"/v2/images/{image_id}/file", content=b"c" * 4096, headers=OCTET)
        assert put.status_code == 204, put.text
        assert (await client.get(f"/v2/images/{image_id}/file")).content == b"c" * 4096
