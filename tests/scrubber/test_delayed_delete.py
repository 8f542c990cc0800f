"""Delayed delete, retried deletions, restore and concurrent scrubbers, on both databases."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageLocation, utcnow
from glimpse.services.deletion import DeletionService, ScrubReport
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import FilesystemStore
from glimpse.stores.registry import StoreRegistry
from relay import relay_to
from store_servers import MotoServer, s3_client

OCTET = {"Content-Type": "application/octet-stream"}


async def uploaded(client: httpx.AsyncClient, data: bytes, **body: Any) -> str:
    body = {"disk_format": "raw", "container_format": "bare", **body}
    image_id: str = (await client.post("/v2/images", json=body)).json()["id"]
    response = await client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert response.status_code == 204
    return image_id


async def rows(database: Database, image_id: str) -> tuple[str, list[str]]:
    async with database.read() as session:
        status = (
            await session.execute(sa.select(Image.status).where(Image.id == image_id))
        ).scalar_one()
        locations = (
            await session.execute(
                sa.select(ImageLocation.status).where(ImageLocation.image_id == image_id)
            )
        ).scalars()
        return status, list(locations)


AFTER_BACKOFF = timedelta(hours=2)  # past deletion_retry_max: any backoff has passed


def deletion(
    settings: Settings, database: Database, *, later: timedelta = timedelta(0)
) -> DeletionService:
    """A scrubber whose clock is `later` ahead (a pass that comes that much later)."""
    stores = StoreRegistry.from_settings(settings)
    return DeletionService(settings, database, stores, clock=lambda: utcnow() + later)


@pytest.fixture
def delayed(make_settings: Any) -> Settings:
    settings: Settings = make_settings(delayed_delete=True, scrub_time=3600)
    return settings


async def test_delayed_delete_keeps_data_until_scrub_time(
    client_for: Any, delayed: Settings, database: Database, make_settings: Any
) -> None:
    client = await client_for(delayed)
    image_id = await uploaded(client, b"keep me a while")
    data_file = delayed.store_datadir("file") / image_id
    assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
    assert (await client.get(f"/v2/images/{image_id}")).status_code == 404
    assert (await client.delete(f"/v2/images/{image_id}")).status_code == 404
    assert image_id not in (await client.get("/v2/images")).text
    assert await rows(database, image_id) == ("pending_delete", ["pending_delete"])
    assert data_file.read_bytes() == b"keep me a while"

    # Inside scrub_time: the scrubber leaves it alone.
    report = await deletion(delayed, database).scrub()
    assert (report.removed, report.images_deleted) == (0, 0)
    assert data_file.exists()

    # Once scrub_time has passed (0 here), the data goes and the image is deleted.
    report = await deletion(make_settings(delayed_delete=True, scrub_time=0), database).scrub()
    assert (report.removed, report.failed, report.images_deleted) == (1, 0, 1)
    assert not data_file.exists()
    assert await rows(database, image_id) == ("deleted", ["deleted"])


async def test_restore_brings_back_image_data_and_tags(
    client_for: Any, delayed: Settings, database: Database
) -> None:
    client = await client_for(delayed)
    data = b"restore me" * 1000
    image_id = await uploaded(client, data, tags=["golden"])
    service = deletion(delayed, database)
    assert await service.restore(image_id) == f"image {image_id} is active, not pending_delete"
    assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
    assert await service.restore(image_id) is None
    shown = (await client.get(f"/v2/images/{image_id}")).json()
    assert (shown["status"], shown["tags"]) == ("active", ["golden"])
    assert (await client.get(f"/v2/images/{image_id}/file")).content == data
    assert await rows(database, image_id) == ("active", ["active"])
    assert await service.restore("no-such-image") == "image no-such-image does not exist"


async def test_restore_refused_once_scrubbing_started(
    client_for: Any, make_settings: Any, database: Database
) -> None:
    settings = make_settings(delayed_delete=True, scrub_time=0)
    client = await client_for(settings)
    image_id = await uploaded(client, b"gone soon")
    await client.delete(f"/v2/images/{image_id}")
    await deletion(settings, database).scrub()
    refusal = await deletion(settings, database).restore(image_id)
    assert refusal == f"image {image_id} is deleted, not pending_delete"


async def test_a_deletion_a_store_refuses_is_kept_and_retried(
    client_for: Any, make_settings: Any, database: Database, tmp_path: Path
) -> None:
    stores = {
        "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
        "cold": {"filesystem_store_datadir": str(tmp_path / "cold")},
    }
    both = make_settings(enabled_backends="fast:file, cold:file", stores=stores)
    client = await client_for(both)
    body = {"disk_format": "raw", "container_format": "bare"}
    image_id = (await client.post("/v2/images", json=body)).json()["id"]
    headers = {**OCTET, "X-Image-Meta-Store": "cold"}
    await client.put(f"/v2/images/{image_id}/file", content=b"cold data", headers=headers)
    assert (tmp_path / "cold" / image_id).exists()
    # An API node that cannot reach the image's store still deletes the image.
    fast_only = await client_for(
        make_settings(enabled_backends="fast:file", stores={"fast": stores["fast"]})
    )
    assert (await fast_only.delete(f"/v2/images/{image_id}")).status_code == 204
    assert await rows(database, image_id) == ("deleted", ["pending_delete"])
    # Each failed attempt (the API's first) puts the next one off (deletion_retry_initial,
    # doubling). A scrubber without the store keeps it recorded; one with it finishes the job.
    fast_only_settings = make_settings(
        enabled_backends="fast:file", stores={"fast": stores["fast"]}
    )
    report = await deletion(fast_only_settings, database).scrub()
    assert (report.removed, report.failed) == (0, 0)  # within the backoff
    report = await deletion(fast_only_settings, database, later=AFTER_BACKOFF).scrub()
    assert (report.removed, report.failed) == (0, 1)
    assert await rows(database, image_id) == ("deleted", ["pending_delete"])
    report = await deletion(both, database, later=AFTER_BACKOFF).scrub()
    assert (report.removed, report.failed) == (0, 0)  # within the new backoff
    report = await deletion(both, database, later=2 * AFTER_BACKOFF).scrub()
    assert (report.removed, report.failed) == (1, 0)
    assert await rows(database, image_id) == ("deleted", ["deleted"])
    assert not (tmp_path / "cold" / image_id).exists()


def s3_cold(tmp_path: Path, endpoint: str) -> dict[str, dict[str, Any]]:
    return {
        "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
        "cold": {
            "s3_store_host": endpoint,
            "s3_store_access_key": "scrub-access",
            "s3_store_secret_key": "scrub-secret",
            "s3_store_bucket": f"scrub-{uuid.uuid4().hex[:12]}",
            "s3_store_create_bucket_on_put": True,
            "s3_store_bucket_url_format": "path",
        },
    }


async def scrub_once(
    settings: Settings, database: Database, *, later: timedelta = timedelta(0)
) -> ScrubReport:
    stores = StoreRegistry.from_settings(settings)
    try:
        service = DeletionService(settings, database, stores, clock=lambda: utcnow() + later)
        return await service.scrub()
    finally:
        await stores.aclose()


async def test_a_delayed_delete_whose_store_is_down_stays_pending_and_is_retried(
    client_for: Any,
    make_settings: Any,
    database: Database,
    tmp_path: Path,
    moto_server: MotoServer,
) -> None:
    host, port = moto_server.host.split(":")
    with relay_to(host, int(port)) as s3_endpoint:
        stores = s3_cold(tmp_path, f"http://{s3_endpoint.address}")
        settings = make_settings(
            enabled_backends="fast:file, cold:s3",
            stores=stores,
            delayed_delete=True,
            scrub_time=0,
        )
        client = await client_for(settings)
        body = {"disk_format": "raw", "container_format": "bare"}
        image_id = (await client.post("/v2/images", json=body)).json()["id"]
        headers = {**OCTET, "X-Image-Meta-Store": "cold"}
        put = await client.put(f"/v2/images/{image_id}/file", content=b"cold data", headers=headers)
        assert put.status_code == 204
        s3 = s3_client(moto_server, "scrub-access", "scrub-secret")
        bucket = stores["cold"]["s3_store_bucket"]
        assert s3.get_object(Bucket=bucket, Key=image_id)["Body"].read() == b"cold data"
        assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204

        # The S3 endpoint is down: the location stays pending, and so does the image.
        s3_endpoint.down()
        report = await scrub_once(settings, database)
        assert (report.removed, report.failed, report.images_deleted) == (0, 1, 0)
        assert await rows(database, image_id) == ("pending_delete", ["pending_delete"])
        assert s3.get_object(Bucket=bucket, Key=image_id)["Body"].read() == b"cold data"

        # Back: the next pass after the backoff removes the object, and only then is the
        # image deleted.
        s3_endpoint.up()
        report = await scrub_once(settings, database, later=AFTER_BACKOFF)
        assert (report.removed, report.failed, report.images_deleted) == (1, 0, 1)
        assert await rows(database, image_id) == ("deleted", ["deleted"])
        assert s3.list_objects_v2(Bucket=bucket).get("Contents", []) == []


class CountingDriver:
    """A real file store that also records every delete it is asked to do."""

    def __init__(self, inner: FilesystemStore, calls: Counter[str]) -> None:
        self.inner = inner
        self.calls = calls
        self.name = inner.name
        self.capabilities = inner.capabilities

    def location_for(self, key: str) -> str:
        return self.inner.location_for(key)

    async def put(self, key: str, chunks: Any) -> Any:
        return await self.inner.put(key, chunks)

    def get(self, location: str, byte_range: Any = None) -> Any:
        return self.inner.get(location, byte_range)

    async def delete(self, location: str) -> None:
        self.calls[location] += 1
        await asyncio.sleep(0.01)  # widen the window in which a second scrubber could race
        await self.inner.delete(location)

    async def size(self, location: str) -> int:
        return await self.inner.size(location)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_two_scrubbers_never_delete_the_same_data_twice(
    client_for: Any, make_settings: Any, database: Database, database_url: str
) -> None:
    settings = make_settings(delayed_delete=True, scrub_time=0, scrub_pool_size=4)
    client = await client_for(settings)
    image_ids = [await uploaded(client, f"image {n}".encode()) for n in range(12)]
    for image_id in image_ids:
        await client.delete(f"/v2/images/{image_id}")
    calls: Counter[str] = Counter()

    def scrubber() -> tuple[DeletionService, Database]:
        own_database = Database.from_url(database_url, pool_size=5)
        driver = CountingDriver(FilesystemStore("file", settings.store_datadir("file")), calls)
        registry = StoreRegistry({"file": CheckedStore(driver)}, "file")
        return DeletionService(settings, own_database, registry), own_database

    (first, db1), (second, db2) = scrubber(), scrubber()
    try:
        reports = await asyncio.gather(first.scrub(), second.scrub())
    finally:
        await db1.dispose()
        await db2.dispose()
    assert sum(report.removed for report in reports) == 12
    assert len(calls) == 12
    assert set(calls.values()) == {1}
    for image_id in image_ids:
        assert await rows(database, image_id) == ("deleted", ["deleted"])
