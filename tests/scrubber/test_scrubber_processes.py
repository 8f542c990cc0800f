"""Real glimpse-api, glimpse-worker and glimpse-scrubber processes: delayed delete end to end,
--restore, and the sweep of the staging store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import httpx
import pytest
import sqlalchemy as sa

from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageLocation
from support import command, environment, free_port, stop
from topology import (
    create_and_stage,
    image_when_settled,
    random_image,
    shared_sections,
    topology,
    wait_for,
)

SCRUB_TIME = 3
OCTET = {"Content-Type": "application/octet-stream"}
T = TypeVar("T")


def query(database_url: str, read: Callable[[Database], Awaitable[T]]) -> T:
    """Run one read against the database from a plain (non-async) test."""

    async def run() -> T:
        database = Database.from_url(database_url, pool_size=1)
        try:
            return await read(database)
        finally:
            await database.dispose()

    return asyncio.run(run())


def service_env(tmp_path: Path, database_url: str, port: int) -> dict[str, str]:
    return environment(
        GLIMPSE_DATABASE__CONNECTION=database_url,
        GLIMPSE_BIND_PORT=str(port),
        GLIMPSE_DELAYED_DELETE="true",
        GLIMPSE_SCRUB_TIME=str(SCRUB_TIME),
        GLIMPSE_SCRUBBER__WAKEUP_TIME="1",
        GLIMPSE_GLANCE_STORE__FILESYSTEM_STORE_DATADIR=str(tmp_path / "images"),
        GLIMPSE_CELERY__BROKER_DATA_DIR=str(tmp_path / "broker"),
    )


@pytest.fixture
def api(
    tmp_path: Path, database_url: str, database: Database
) -> Iterator[tuple[str, dict[str, str]]]:
    del database  # requested for its migrated, empty schema
    port = free_port()
    env = service_env(tmp_path, database_url, port)
    process = subprocess.Popen(
        [command("glimpse-api")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, process.communicate()[0]
        try:
            if httpx.get(f"{url}/versions", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "glimpse-api did not start"
        time.sleep(0.2)
    yield url, env
    stop(process)


async def row_times(database: Database, image_id: str) -> tuple[str, float]:
    """Image status, and seconds from its deletion to its data's removal."""
    async with database.read() as session:
        image = (await session.execute(sa.select(Image).where(Image.id == image_id))).scalar_one()
        location = (
            await session.execute(
                sa.select(ImageLocation).where(ImageLocation.image_id == image_id)
            )
        ).scalar_one()
    assert image.deleted_at is not None
    assert location.updated_at is not None
    return image.status, (location.updated_at - image.deleted_at).total_seconds()


async def image_status(database: Database, image_id: str) -> str:
    async with database.read() as session:
        status: str = (
            await session.execute(sa.select(Image.status).where(Image.id == image_id))
        ).scalar_one()
    return status


def test_data_leaves_the_store_only_after_scrub_time(
    api: tuple[str, dict[str, str]], tmp_path: Path, database_url: str
) -> None:
    url, env = api
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {"disk_format": "raw", "container_format": "bare", "name": "scrub-me"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        client.put(f"/v2/images/{image_id}/file", content=b"x" * 4096, headers=OCTET)
        data_file = tmp_path / "images" / image_id
        assert data_file.exists()
        scrubber = subprocess.Popen(
            [command("glimpse-scrubber"), "--daemon"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert client.delete(f"/v2/images/{image_id}").status_code == 204
            assert client.get(f"/v2/images/{image_id}").status_code == 404
            deadline = time.monotonic() + 60
            while data_file.exists():
                assert scrubber.poll() is None, "the scrubber daemon exited"
                assert time.monotonic() < deadline, "the scrubber never removed the data"
                time.sleep(0.2)
        finally:
            code, output = stop(scrubber)
    assert code == 0, output
    status, waited = query(database_url, lambda db: row_times(db, image_id))
    assert status == "deleted"
    assert waited >= SCRUB_TIME


def test_restore_command(
    api: tuple[str, dict[str, str]], tmp_path: Path, database_url: str
) -> None:
    url, env = api
    data = bytes(range(256)) * 64
    with httpx.Client(base_url=url, timeout=30) as client:
        body = {"disk_format": "raw", "container_format": "bare"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
        client.delete(f"/v2/images/{image_id}")
        restore = [command("glimpse-scrubber"), "--restore", image_id]
        done = subprocess.run(restore, env=env, cwd=tmp_path, capture_output=True, check=False)
        assert done.returncode == 0, done.stdout + done.stderr
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "active"
        assert client.get(f"/v2/images/{image_id}/file").content == data
        again = subprocess.run(
            restore, env=env, cwd=tmp_path, capture_output=True, text=True, check=False
        )
        assert again.returncode == 1
        assert "not pending_delete" in again.stdout + again.stderr
    assert query(database_url, lambda db: image_status(db, image_id)) == "active"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_production_topology_scrubs_and_sweeps(
    tmp_path: Path, database_url: str, redis_db: str
) -> None:
    """API, worker and scrubber daemon on PostgreSQL and Redis: an image imported by the worker
    is deleted with delayed delete and scrubbed after scrub_time; the scrubber sweeps the staged
    data of a deleted image but not that of an upload in flight."""
    conf = [
        "[DEFAULT]",
        "delayed_delete = true",
        f"scrub_time = {SCRUB_TIME}",
        *shared_sections(tmp_path, database_url, redis_db),
        "[scrubber]",
        "wakeup_time = 1",
    ]
    imported = random_image(tmp_path / "imported.raw", 2 * 1024 * 1024 + 3)
    in_flight = random_image(tmp_path / "in-flight.raw", 4096)
    abandoned = random_image(tmp_path / "abandoned.raw", 4096)
    an_hour_ago = time.time() - 3600
    with (
        topology(tmp_path, conf) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        topo.start_api()
        topo.start_worker()
        image_id = create_and_stage(client, imported)
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        assert image_when_settled(client, image_id, topo)["status"] == "active"
        # Two staged files, aged past the sweep's quiet period: one of an upload still waiting
        # for its import, one whose image has since been deleted. The delete removes its staged
        # data itself; the file put back stands for one the staging store refused to remove.
        waiting_id = create_and_stage(client, in_flight)
        gone_id = create_and_stage(client, abandoned)
        assert client.delete(f"/v2/images/{gone_id}").status_code == 204
        orphan = tmp_path / "staging" / gone_id
        assert not orphan.exists()
        orphan.write_bytes(abandoned.path.read_bytes())
        for staged_id in (waiting_id, gone_id):
            os.utime(tmp_path / "staging" / staged_id, (an_hour_ago, an_hour_ago))

        data_file = tmp_path / "images" / image_id
        assert client.delete(f"/v2/images/{image_id}").status_code == 204
        assert data_file.exists()
        topo.start("glimpse-scrubber", "--daemon")
        wait_for("the scrubber to remove the data", lambda: None if data_file.exists() else True)
        wait_for(
            "the sweep of the deleted image's staged data",
            lambda: None if (tmp_path / "staging" / gone_id).exists() else True,
        )
        assert (tmp_path / "staging" / waiting_id).read_bytes() == in_flight.path.read_bytes()
        assert client.get(f"/v2/images/{waiting_id}").json()["status"] == "uploading"
    status, waited = query(database_url, lambda db: row_times(db, image_id))
    assert status == "deleted"
    assert waited >= SCRUB_TIME
