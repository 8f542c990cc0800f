"""Deletions that can never succeed (a store gone for good) back off and do not hold up the
others: more of them than one batch, waiting longer than the good ones, and
the good ones are still scrubbed in the same pass, one deletion at a time."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageLocation, utcnow
from glimpse.services.deletion import SCRUB_BATCH, DeletionService, ScrubReport
from glimpse.stores.registry import StoreRegistry

OCTET = {"Content-Type": "application/octet-stream"}
MINUTE = timedelta(minutes=1)


async def add_stuck_image(database: Database, locations: int) -> str:
    """A pending_delete image deleted a day ago whose data can never be deleted: its locations
    are in a store that is no longer enabled anywhere. (A read-only http location is not such a
    case: its record is dropped, there being nothing to delete.)"""
    image_id = str(uuid.uuid4())
    day_ago = utcnow() - timedelta(days=1)
    rows: list[dict[str, Any]] = [
        {
            "image_id": image_id,
            "value": f"rbd://retired/pool/{image_id}/{n}",
            "meta_data": {"store": "retired"},
            "status": "pending_delete",
            "created_at": day_ago,
            "updated_at": day_ago,
        }
        for n in range(locations)
    ]
    async with database.write() as session:
        session.add(
            Image(
                id=image_id,
                status="pending_delete",
                visibility="private",
                deleted=True,
                deleted_at=day_ago,
                created_at=day_ago,
            )
        )
        await session.flush()
        await session.execute(sa.insert(ImageLocation), rows)
    return image_id


async def location_rows(database: Database, image_id: str) -> list[ImageLocation]:
    async with database.read() as session:
        result = await session.execute(
            sa.select(ImageLocation).where(ImageLocation.image_id == image_id)
        )
        return list(result.scalars())


async def scrub(
    settings: Settings, database: Database, later: timedelta = timedelta(0)
) -> ScrubReport:
    stores = StoreRegistry.from_settings(settings)
    try:
        service = DeletionService(settings, database, stores, clock=lambda: utcnow() + later)
        return await service.scrub()
    finally:
        await stores.aclose()


async def test_permanent_failures_back_off_and_never_block_the_others(
    client_for: Any, make_settings: Any, database: Database
) -> None:
    settings: Settings = make_settings(
        enabled_backends="file:file, web:http",
        delayed_delete=True,
        scrub_time=0,
        scrub_pool_size=1,
        scrubber={"deletion_retry_initial": 60, "deletion_retry_max": 3600},
    )
    stuck = await add_stuck_image(database, SCRUB_BATCH)  # a whole batch, waiting longest
    client: httpx.AsyncClient = await client_for(settings)
    good: list[str] = []
    for n in range(3):
        body = {"disk_format": "raw", "container_format": "bare", "name": f"good-{n}"}
        image_id = (await client.post("/v2/images", json=body)).json()["id"]
        put = await client.put(f"/v2/images/{image_id}/file", content=b"data", headers=OCTET)
        assert put.status_code == 204
        assert (await client.delete(f"/v2/images/{image_id}")).status_code == 204
        good.append(image_id)
    datadir: Path = settings.store_datadir("file")
    assert all((datadir / image_id).exists() for image_id in good)

    started = utcnow()
    report = await scrub(settings, database)
    ended = utcnow()
    assert (report.removed, report.failed, report.images_deleted) == (3, SCRUB_BATCH, 3)
    assert not any((datadir / image_id).exists() for image_id in good)
    for image_id in good:
        [location] = await location_rows(database, image_id)
        assert location.status == "deleted"
    stuck_rows = await location_rows(database, stuck)
    assert {row.status for row in stuck_rows} == {"pending_delete"}
    assert {row.attempts for row in stuck_rows} == {1}
    for row in stuck_rows:
        assert row.next_attempt_at is not None
        assert started + MINUTE <= row.next_attempt_at <= ended + MINUTE  # deletion_retry_initial

    # Within the backoff a pass leaves them alone; after it, they are tried again, and the
    # wait doubles.
    report = await scrub(settings, database)
    assert (report.removed, report.failed) == (0, 0)
    later = 2 * MINUTE
    started = utcnow()
    report = await scrub(settings, database, later=later)
    ended = utcnow()
    assert (report.removed, report.failed) == (0, SCRUB_BATCH)
    stuck_rows = await location_rows(database, stuck)
    assert {row.attempts for row in stuck_rows} == {2}
    for row in stuck_rows:
        assert row.next_attempt_at is not None
        assert started + later + 2 * MINUTE <= row.next_attempt_at <= ended + later + 2 * MINUTE
