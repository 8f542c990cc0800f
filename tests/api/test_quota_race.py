"""user_storage_quota is a hard limit: uploads, stages and imports in flight reserve their bytes
in the database, so writers running side by side, on two API nodes (two apps on one database)
and in workers, can never together store more than the quota. The refused ones answer 413 (or
fail their task) with Glance's message and keep nothing; the output of the decompression and
conversion plugins counts too."""

from __future__ import annotations

import asyncio
import gzip
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from factories import OCTET, assert_refused, qemu_img, run_import, staged_files
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import utcnow
from glimpse.limits import StorageQuota
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import new_image
from store_servers import HttpServer

MiB: Final = 1024 * 1024
QUOTA: Final = 10 * MiB
SIZE: Final = 4 * MiB  # two fit under the quota, a third does not
WRITERS: Final = 5
QUOTA_MESSAGE: Final = (
    f"Denying attempt to upload image because it exceeds the quota: {QUOTA} bytes"
)


@pytest.fixture
def quota_settings(make_settings: Any) -> Settings:
    settings: Settings = make_settings(user_storage_quota=str(QUOTA))
    return settings


@pytest.fixture
async def nodes(client_for: Any, quota_settings: Settings) -> list[httpx.AsyncClient]:
    """Two API nodes: apps of their own (each its own database pool) on one database."""
    return [await client_for(quota_settings), await client_for(quota_settings)]


async def reservations(database: Database) -> int:
    async with database.read() as session:
        count = await session.scalar(sa.text("SELECT count(*) FROM storage_reservations"))
    return int(count or 0)


def stored_files(settings: Settings) -> list[Path]:
    datadir = settings.glance_store.filesystem_store_datadir
    return sorted(datadir.iterdir()) if datadir.exists() else []


class Gate:
    """Holds every request body back until all the writers have been admitted or refused,
    so their claims all happen before any data arrives (the race a quota must survive)."""

    def __init__(self) -> None:
        self.open = asyncio.Event()

    async def body(self, data: bytes) -> AsyncIterator[bytes]:
        await self.open.wait()
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    async def release_when(self, settled: Callable[[], Awaitable[bool]]) -> None:
        for _poll in range(2000):
            if await settled():
                break
            await asyncio.sleep(0.01)
        self.open.set()


async def race(
    nodes: list[httpx.AsyncClient],
    path: str,
    busy_status: str,
    *,
    announce: bool,
) -> list[tuple[str, httpx.Response]]:
    """WRITERS images, each sent SIZE bytes at `path` at the same time through alternating
    nodes, with or without Content-Length; (image id, response) for each."""
    client = nodes[0]
    images = [
        await new_image(client, {}, disk_format="raw", container_format="bare")
        for _ in range(WRITERS)
    ]
    gate = Gate()
    answered: set[str] = set()

    async def send(index: int, image_id: str) -> tuple[str, httpx.Response]:
        headers = dict(OCTET)
        if announce:
            headers["Content-Length"] = str(SIZE)
        node = nodes[index % len(nodes)]
        response = await node.put(
            path.format(id=image_id), content=gate.body(os.urandom(SIZE)), headers=headers
        )
        answered.add(image_id)
        return image_id, response

    async def settled() -> bool:
        busy = 0
        for image_id in images:
            shown = (await client.get(f"/v2/images/{image_id}")).json()
            busy += shown["status"] == busy_status and image_id not in answered
        return busy + len(answered) == WRITERS

    results = asyncio.gather(*(send(i, image_id) for i, image_id in enumerate(images)))
    await gate.release_when(settled)
    return await results


def assert_refusals(outcomes: list[tuple[str, httpx.Response]]) -> list[str]:
    """Every writer was accepted (204) or refused with Glance's quota message; the accepted."""
    accepted = []
    for image_id, response in outcomes:
        if response.status_code == 204:
            accepted.append(image_id)
        else:
            assert response.status_code == 413, response.text
            assert response.json()["message"] == QUOTA_MESSAGE
    return accepted


async def sizes(client: httpx.AsyncClient, image_ids: list[str]) -> dict[str, tuple[str, Any]]:
    shown = [(await client.get(f"/v2/images/{i}")).json() for i in image_ids]
    return {image["id"]: (image["status"], image["size"]) for image in shown}


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_parallel_uploads_on_two_nodes_never_pass_the_quota(
    nodes: list[httpx.AsyncClient],
    quota_settings: Settings,
    database: Database,
    announce: bool,
) -> None:
    outcomes = await race(nodes, "/v2/images/{id}/file", "saving", announce=announce)
    accepted = assert_refusals(outcomes)
    states = await sizes(nodes[0], [image_id for image_id, _ in outcomes])
    active = {i: size for i, (status, size) in states.items() if status == "active"}
    assert set(active) == set(accepted)
    assert sum(active.values()) <= QUOTA
    if announce:
        # Sizes known up front: exactly what fits is admitted, the rest refused at once.
        assert len(accepted) == QUOTA // SIZE
    for image_id, (status, size) in states.items():
        if image_id not in accepted:
            assert (status, size) == ("queued", None)  # nothing half-written
    assert sorted(path.name for path in stored_files(quota_settings)) == sorted(accepted)
    assert await reservations(database) == 0


@pytest.mark.parametrize("announce", [True, False], ids=["content-length", "chunked"])
async def test_parallel_stages_on_two_nodes_never_pass_the_quota(
    nodes: list[httpx.AsyncClient],
    quota_settings: Settings,
    database: Database,
    announce: bool,
) -> None:
    outcomes = await race(nodes, "/v2/images/{id}/stage", "uploading", announce=announce)
    accepted = assert_refusals(outcomes)
    states = await sizes(nodes[0], [image_id for image_id, _ in outcomes])
    staged = {i: size for i, (status, size) in states.items() if status == "uploading"}
    assert set(staged) == set(accepted)
    assert sum(staged.values()) <= QUOTA
    if announce:
        assert len(accepted) == QUOTA // SIZE
    assert sorted(path.name for path in staged_files(quota_settings)) == sorted(accepted)
    assert await reservations(database) == 0


async def test_parallel_web_downloads_count_their_bytes_in_flight(
    make_settings: Any, client_for: Any, database: Database, http_server: HttpServer
) -> None:
    settings = make_settings(
        user_storage_quota=str(6 * MiB),
        import_filtering_opts={
            "allowed_hosts": "localhost",
            "allowed_ports": str(urlsplit(http_server.base).port),
        },
    )
    client = await client_for(settings)
    (http_server.root / "disk.raw").write_bytes(os.urandom(SIZE))
    uri = f"http://localhost:{urlsplit(http_server.base).port}/files/disk.raw"
    tasks = []
    for _ in range(2):
        image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
        body = {"method": {"name": "web-download", "uri": uri}}
        response = await client.post(f"/v2/images/{image_id}/import", json=body)
        assert response.status_code == 202, response.text
        [task] = (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
        tasks.append((image_id, task["id"]))
    workers = [WorkerRuntime.build(settings), WorkerRuntime.build(settings)]  # two workers
    try:
        await asyncio.gather(*(import_.run(w, t) for w, (_, t) in zip(workers, tasks, strict=True)))
    finally:
        for worker in workers:
            await worker.aclose()
    finished = [(await client.get(f"/v2/tasks/{t}")).json() for _, t in tasks]
    states = await sizes(client, [image_id for image_id, _ in tasks])
    assert sorted(task["status"] for task in finished) == ["failure", "success"]
    [failed] = [task for task in finished if task["status"] == "failure"]
    assert failed["message"] == (
        f"Denying attempt to upload image because it exceeds the quota: {6 * MiB} bytes"
    )
    assert sorted(states.values()) == [("active", SIZE), ("queued", None)]
    assert staged_files(settings) == []
    assert await reservations(database) == 0


async def test_a_decompression_past_the_quota_fails_the_task(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    data = gzip.compress(bytes(8 * MiB))  # a few kilobytes staged, 8 MiB once decompressed
    imported = await run_import(
        make_settings,
        client_for,
        data,
        ["image_decompression"],
        user_storage_quota=str(4 * MiB),
    )
    assert_refused(
        imported, f"Denying attempt to upload image because it exceeds the quota: {4 * MiB} bytes"
    )
    assert imported.image["size"] is None
    assert await reservations(database) == 0


async def test_a_conversion_past_the_quota_fails_the_task(
    make_settings: Any, client_for: Any, database: Database, tmp_path: Path
) -> None:
    sparse = tmp_path / "sparse.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(sparse), "64M")  # tiny, 64 MiB once raw
    imported = await run_import(
        make_settings,
        client_for,
        sparse.read_bytes(),
        ["image_conversion"],
        disk_format="qcow2",
        user_storage_quota=str(8 * MiB),
    )
    assert_refused(
        imported, f"Denying attempt to upload image because it exceeds the quota: {8 * MiB} bytes"
    )
    assert await reservations(database) == 0


async def test_a_reservation_counts_until_its_lease_runs_out(
    quota_settings: Settings, client_for: Any, database: Database
) -> None:
    """A writer that died leaves its reservation: it holds the room until its lease ends."""
    client = await client_for(quota_settings)
    dead = await new_image(client, {}, disk_format="raw", container_format="bare")
    # What an upload on a node that then died had reserved: nearly the whole quota.
    await StorageQuota(quota_settings, database).reserve(dead, "glimpse", QUOTA - 1)
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    refused = await client.put(f"/v2/images/{image_id}/file", content=b"x" * 1024, headers=OCTET)
    assert refused.status_code == 413, refused.text
    assert refused.json()["message"] == QUOTA_MESSAGE
    async with database.write() as session:
        await session.execute(
            sa.text("UPDATE storage_reservations SET lease_until = :past"),
            {"past": utcnow().replace(year=2000)},
        )
    accepted = await client.put(f"/v2/images/{image_id}/file", content=b"x" * 1024, headers=OCTET)
    assert accepted.status_code == 204, accepted.text
    assert await reservations(database) == 0  # the lapsed one was dropped too
