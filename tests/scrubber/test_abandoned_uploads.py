"""An upload whose API process is killed (kill -9) mid-way leaves its image `saving`; once the
upload's lease has run out, the scrubber's pass (or an API's start-up sweep) takes the image
back to queued and removes the partial data, and a new upload succeeds. An upload that is
still in progress, however long its client pauses, keeps its lease and is never taken back.
Real glimpse-api (uvicorn) and glimpse-scrubber processes on PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from glimpse.db.engine import Database
from glimpse.db.tables import Image, utcnow
from topology import Topology, shared_sections, topology, wait_for

MiB = 1024 * 1024
LEASE = 3  # [scrubber] lease_time: seconds an upload's lease lasts without renewal
PASS_LINE = "running check_database"  # the scrubber's debug line at the start of each pass

pytestmark = [
    pytest.mark.parametrize("database_url", ["postgres"], indirect=True),
    pytest.mark.usefixtures("database"),  # its migrated, empty schema
]


def conf(workdir: Path, database_url: str) -> list[str]:
    return [
        "[DEFAULT]",
        "debug = true",
        *shared_sections(workdir, database_url, "filesystem://"),
        f"broker_data_dir = {workdir / 'broker'}",
        "[scrubber]",
        f"lease_time = {LEASE}",
        "wakeup_time = 1",
    ]


def image_row(database_url: str, image_id: str) -> Image:
    async def read() -> Image:
        database = Database.from_url(database_url, pool_size=1)
        try:
            async with database.read() as session:
                query = sa.select(Image).where(Image.id == image_id)
                return (await session.execute(query)).scalar_one()
        finally:
            await database.dispose()

    return asyncio.run(read())


def partials(datadir: Path) -> list[Path]:
    return sorted(datadir.glob(".partial-*")) if datadir.exists() else []


def new_image(client: httpx.Client) -> str:
    body = {"disk_format": "raw", "container_format": "bare", "name": "upload"}
    created = client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


@pytest.fixture
def raw_upload() -> Iterator[list[socket.socket]]:
    """Sockets of uploads sent by hand (so the test decides when each byte goes)."""
    opened: list[socket.socket] = []
    yield opened
    for sock in opened:
        sock.close()


def start_upload(
    opened: list[socket.socket], topo: Topology, image_id: str, size: int
) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", topo.port), timeout=60)
    opened.append(sock)
    head = (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode())
    return sock


def saving_with_partial(database_url: str, image_id: str, datadir: Path) -> bool | None:
    saving = image_row(database_url, image_id).status == "saving"
    return (saving and bool(partials(datadir))) or None


@pytest.mark.parametrize("recovery", ["scrubber", "api start-up"])
def test_an_upload_killed_with_its_api_is_taken_back(
    tmp_path: Path, database_url: str, raw_upload: list[socket.socket], recovery: str
) -> None:
    datadir = tmp_path / "images"
    with (
        topology(tmp_path, conf(tmp_path, database_url)) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        api = topo.start_api()
        image_id = new_image(client)
        sock = start_upload(raw_upload, topo, image_id, 64 * MiB)
        sock.sendall(os.urandom(4 * MiB))
        wait_for(
            "the upload to be under way",
            lambda: saving_with_partial(database_url, image_id, datadir),
        )
        topo.kill(api)  # kill -9: no handler, no release
        sock.close()
        assert image_row(database_url, image_id).status == "saving"
        [partial] = partials(datadir)

        if recovery == "scrubber":
            topo.start("glimpse-scrubber", "--daemon")
        else:
            # The next API start-up sweeps once the lease and the file have aged past it.
            def aged() -> bool | None:
                lease = image_row(database_url, image_id).upload_lease_until
                assert lease is not None
                untouched = time.time() - partial.stat().st_mtime
                # The nodes' UTC clock, as leases are written with.
                return (lease < utcnow() and untouched > LEASE + 1) or None

            wait_for("the lease to run out", aged)
            topo.start_api()

        def taken_back() -> bool | None:
            queued = image_row(database_url, image_id).status == "queued"
            return (queued and not partials(datadir)) or None

        try:
            wait_for("the image to be taken back, its partial data removed", taken_back)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{topo.logs()}") from None
        row = image_row(database_url, image_id)
        assert (row.upload_id, row.upload_lease_until, row.size) == (None, None, None)
        assert "its upload was abandoned" in topo.logs()

        if recovery == "scrubber":
            topo.start_api()
        data = os.urandom(5 * MiB + 3)
        put = client.put(
            f"/v2/images/{image_id}/file",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 204, put.text
        shown = client.get(f"/v2/images/{image_id}").json()
        assert shown["status"] == "active"
        assert shown["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert client.get(f"/v2/images/{image_id}/file").content == data
        assert sorted(p.name for p in datadir.iterdir()) == [image_id]


def test_a_paused_upload_on_a_live_api_keeps_its_lease(
    tmp_path: Path, database_url: str, raw_upload: list[socket.socket]
) -> None:
    datadir = tmp_path / "images"
    first, rest = os.urandom(2 * MiB), os.urandom(3 * MiB + 1)
    with (
        topology(tmp_path, conf(tmp_path, database_url)) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        topo.start_api()
        topo.start("glimpse-scrubber", "--daemon")
        image_id = new_image(client)
        sock = start_upload(raw_upload, topo, image_id, len(first) + len(rest))
        sock.sendall(first)
        wait_for(
            "the upload to be under way",
            lambda: saving_with_partial(database_url, image_id, datadir),
        )
        [partial] = partials(datadir)

        # The client pauses past the lease: its file ages, scrubber passes come and go.
        def paused_long_enough() -> bool | None:
            untouched = time.time() - partial.stat().st_mtime
            return untouched > 2 * LEASE or None

        wait_for("the pause to outlast the lease", paused_long_enough)
        passes = topo.log("glimpse-scrubber").count(PASS_LINE)
        wait_for(
            "two more scrubber passes",
            lambda: topo.log("glimpse-scrubber").count(PASS_LINE) >= passes + 2 or None,
        )
        assert image_row(database_url, image_id).status == "saving"
        assert partial.exists()

        sock.sendall(rest)
        answer = sock.recv(4096).decode(errors="replace")
        assert answer.startswith("HTTP/1.1 204"), answer + topo.logs()
        shown = client.get(f"/v2/images/{image_id}").json()
        assert shown["status"] == "active"
        assert shown["size"] == len(first) + len(rest)
        digest = hashlib.md5(first + rest, usedforsecurity=False).hexdigest()
        assert shown["checksum"] == digest
        assert "its upload was abandoned" not in topo.logs()
