"""Several glimpse-scrubber processes at once over one PostgreSQL database: every due image is
scrubbed, and each piece of data is removed by exactly one of them."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageLocation
from topology import OCTET, Topology, topology, wait_for

IMAGES = 40
SCRUB_TIME = 2
SCRUBBED = re.compile(r"image (\S+): scrubbed data at (\S+)")


def conf(tmp_path: Path, database_url: str) -> list[str]:
    return [
        "[DEFAULT]",
        "delayed_delete = true",
        f"scrub_time = {SCRUB_TIME}",
        "scrub_pool_size = 4",
        "[glance_store]",
        f"filesystem_store_datadir = {tmp_path / 'images'}",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {tmp_path / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {tmp_path / 'tasks'}",
        "[database]",
        f"connection = {database_url}",
        "[celery]",
        f"broker_data_dir = {tmp_path / 'broker'}",
        "[scrubber]",
        "wakeup_time = 1",
    ]


def pending_deletes(topo: Topology) -> list[str]:
    """IMAGES uploaded then deleted through a real glimpse-api, now pending_delete."""
    topo.start_api()
    image_ids = []
    with httpx.Client(base_url=topo.url, timeout=30) as client:
        for n in range(IMAGES):
            body = {"disk_format": "raw", "container_format": "bare", "name": f"scrub-{n}"}
            image_id = client.post("/v2/images", json=body).json()["id"]
            put = client.put(f"/v2/images/{image_id}/file", content=b"%d" % n * 999, headers=OCTET)
            assert put.status_code == 204
            image_ids.append(image_id)
        for image_id in image_ids:
            assert client.delete(f"/v2/images/{image_id}").status_code == 204
    assert sorted(p.name for p in (topo.workdir / "images").iterdir()) == sorted(image_ids)
    time.sleep(SCRUB_TIME)  # let every scrub_time pass before the scrubbers start together
    return image_ids


def scrubbed_by(topo: Topology, logs: list[str]) -> Counter[str]:
    """How many times each image's data was removed, over every scrubber's log."""
    return Counter(m.group(1) for name in logs for m in SCRUBBED.finditer(topo.log(name)))


def statuses(database_url: str) -> tuple[Counter[str], Counter[str]]:
    async def read() -> tuple[Counter[str], Counter[str]]:
        database = Database.from_url(database_url, pool_size=1)
        try:
            async with database.read() as session:
                images = (await session.execute(sa.select(Image.status))).scalars()
                locations = (await session.execute(sa.select(ImageLocation.status))).scalars()
                return Counter(images), Counter(locations)
        finally:
            await database.dispose()

    return asyncio.run(read())


def assert_scrubbed_once(
    topo: Topology, logs: list[str], image_ids: list[str], database_url: str
) -> None:
    assert scrubbed_by(topo, logs) == Counter(dict.fromkeys(image_ids, 1)), topo.logs()
    assert list((topo.workdir / "images").iterdir()) == []
    assert statuses(database_url) == (Counter(deleted=IMAGES), Counter(deleted=IMAGES))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_one_shot_scrubbers_started_together(
    tmp_path: Path, database_url: str, database: Database
) -> None:
    del database  # requested for its migrated, empty schema
    with topology(tmp_path, conf(tmp_path, database_url)) as topo:
        image_ids = pending_deletes(topo)
        first = topo.start("glimpse-scrubber", log_as="scrubber-1")
        second = topo.start("glimpse-scrubber", log_as="scrubber-2")
        assert first.wait(timeout=120) == 0, topo.log("scrubber-1")
        assert second.wait(timeout=120) == 0, topo.log("scrubber-2")
        assert_scrubbed_once(topo, ["scrubber-1", "scrubber-2"], image_ids, database_url)


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_two_scrubber_daemons(tmp_path: Path, database_url: str, database: Database) -> None:
    del database  # requested for its migrated, empty schema
    with topology(tmp_path, conf(tmp_path, database_url)) as topo:
        image_ids = pending_deletes(topo)
        logs = ["daemon-1", "daemon-2"]
        for name in logs:
            topo.start("glimpse-scrubber", "--daemon", log_as=name)

        def all_deleted() -> bool | None:
            return statuses(database_url)[0] == Counter(deleted=IMAGES) or None

        wait_for("the daemons to scrub every image", all_deleted)
        # Give each daemon further passes (wakeup_time = 1): none may remove anything again.
        time.sleep(2.5)
        assert_scrubbed_once(topo, logs, image_ids, database_url)
