"""kill -9 of a glimpse-worker mid-import, on Redis and PostgreSQL: the import is taken over by
a new worker and finishes once, with nothing left behind.

The worker is held mid-import deterministically: the second target store is an S3 server
process that the test stops (SIGSTOP) before the import, so the worker writes the first store,
reports "Copied N MiB", and then waits on the second.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from glimpse.db.engine import Database
from glimpse.db.tables import ImageLocation
from store_servers import MotoServer, s3_client, wait_until_answering
from support import free_port
from topology import (
    ImageData,
    Topology,
    create_and_stage,
    downloaded_sha512,
    image_when_settled,
    random_image,
    shared_sections,
    topology,
    wait_for,
)

MiB = 1024 * 1024
LEASE = 10  # [task] lease_time: the least the option allows
BUCKET = "glimpse-cold"


@pytest.fixture
def stoppable_s3(tmp_path: Path) -> Iterator[tuple[MotoServer, subprocess.Popen[bytes]]]:
    """A moto S3 server of this test's own, so that stopping it disturbs no other test."""
    port = free_port()
    log = tmp_path / "moto.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_answering(endpoint, process, log)
        yield MotoServer(endpoint=endpoint, host=f"127.0.0.1:{port}"), process
    finally:
        process.send_signal(signal.SIGCONT)
        process.terminate()
        process.wait(timeout=30)


def crash_conf(
    workdir: Path, database_url: str, broker_url: str, s3: MotoServer, visibility_timeout: int
) -> list[str]:
    return [
        "[DEFAULT]",
        "enabled_backends = fast:file, cold:s3",
        "[glance_store]",
        "default_backend = fast",
        "[fast]",
        f"filesystem_store_datadir = {workdir / 'fast'}",
        "[cold]",
        f"s3_store_host = {s3.endpoint}",
        "s3_store_access_key = crash-access",
        "s3_store_secret_key = crash-secret",
        f"s3_store_bucket = {BUCKET}",
        "s3_store_create_bucket_on_put = true",
        "s3_store_bucket_url_format = path",
        "[os_glance_staging_store]",
        f"filesystem_store_datadir = {workdir / 'staging'}",
        "[os_glance_tasks_store]",
        f"filesystem_store_datadir = {workdir / 'tasks'}",
        "[database]",
        f"connection = {database_url}",
        "[celery]",
        f"broker_url = {broker_url}",
        "worker_concurrency = 1",
        # The "pool-child" recovery kills the pool process that runs the import.
        "worker_pool = prefork",
        f"visibility_timeout = {visibility_timeout}",
        "[task]",
        f"lease_time = {LEASE}",
        "[scrubber]",
        "wakeup_time = 1",
    ]


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def s3_state(s3: MotoServer) -> tuple[list[str], list[str]]:
    """Object keys in the bucket, and keys of multipart uploads left open."""
    client = s3_client(s3, "crash-access", "crash-secret")
    objects = client.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    uploads = client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])
    return [o["Key"] for o in objects], [u["Key"] for u in uploads]


def active_locations(database_url: str, image_id: str) -> list[str | None]:
    async def read() -> list[str | None]:
        database = Database.from_url(database_url, pool_size=1)
        try:
            async with database.read() as session:
                rows = await session.execute(
                    sa.select(ImageLocation).where(
                        ImageLocation.image_id == image_id, ImageLocation.status == "active"
                    )
                )
                return sorted((row.store_id for row in rows.scalars()), key=str)
        finally:
            await database.dispose()

    return asyncio.run(read())


def import_task(client: httpx.Client, image_id: str) -> dict[str, Any]:
    [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    return dict(task)


def assert_imported_into_both_stores(
    topo: Topology, client: httpx.Client, image_id: str, image: ImageData
) -> None:
    settled = image_when_settled(client, image_id, topo)
    assert settled["status"] == "active", topo.logs()
    assert settled["size"] == image.size
    assert settled["checksum"] == image.md5
    assert settled["os_hash_algo"] == "sha512"
    assert settled["os_hash_value"] == image.sha512
    assert sorted(settled["stores"].split(",")) == ["cold", "fast"]
    assert "os_glance_import_task" not in settled
    task = import_task(client, image_id)
    assert task["status"] == "success"
    assert task["result"]["stores"] == ["fast", "cold"]
    assert downloaded_sha512(client, image_id) == image.sha512


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.parametrize("recovery", ["scrubber", "broker", "pool-child"])
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_import_survives_kill_9_of_its_worker(
    tmp_path: Path,
    database_url: str,
    redis_db: str,
    stoppable_s3: tuple[MotoServer, subprocess.Popen[bytes]],
    recovery: str,
) -> None:
    """recovery "scrubber": the production default (visibility_timeout of an hour), the task is
    re-sent by requeue_pending once the lease ran out. recovery "pool-child": only the pool
    process dies (as under the OOM killer); its parent requeues the message at once
    (reject_on_worker_lost), which finds the lease still held and is retried when the lease
    ends: the same worker takes the task over, no scrubber needed. recovery "broker": no
    scrubber, a short
    visibility_timeout (above the lease), and Redis itself hands the message back."""
    s3, s3_process = stoppable_s3
    image = random_image(tmp_path / "image.raw", 6 * MiB + 7)
    visibility = 3600 if recovery == "scrubber" else LEASE + 2
    conf = crash_conf(tmp_path, database_url, redis_db, s3, visibility)
    with (
        topology(tmp_path, conf) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        topo.start_api()
        first_worker = topo.start_worker()
        image_id = create_and_stage(client, image)
        s3_process.send_signal(signal.SIGSTOP)
        started = client.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "glance-direct"}, "stores": ["fast", "cold"]},
        )
        assert started.status_code == 202, started.text

        def fast_written() -> bool | None:
            # The progress written once the first store holds the whole image.
            return import_task(client, image_id).get("message") == "Copied 6 MiB" or None

        wait_for("the worker to write the first store", fast_written)
        if recovery == "pool-child":
            [child] = pool_children(first_worker.pid)
            os.kill(child, signal.SIGKILL)
        else:
            topo.kill(first_worker)
        s3_process.send_signal(signal.SIGCONT)
        task = import_task(client, image_id)
        assert task["status"] == "processing"
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "importing"

        if recovery == "scrubber":
            topo.start_worker()
            topo.start("glimpse-scrubber", "--daemon")
        elif recovery == "pool-child":
            pass  # the worker's own retry finishes it
        else:
            # A worker restores unacknowledged messages older than visibility_timeout when it
            # connects: start it once both the lease and that timeout have passed.
            time.sleep(visibility + 1)
            topo.start_worker()
        assert_imported_into_both_stores(topo, client, image_id, image)

    assert active_locations(database_url, image_id) == ["cold", "fast"]
    assert [p.name for p in (tmp_path / "fast").iterdir()] == [image_id]
    assert list((tmp_path / "staging").iterdir()) == []
    assert s3_state(s3) == ([image_id], [])
    if recovery == "scrubber":
        assert "requeued 1 of 1 stalled import tasks" in topo.log("glimpse-scrubber")
    else:
        assert topo.log("glimpse-scrubber") == ""
    if recovery == "pool-child":
        assert "held by another worker's lease" in topo.log("glimpse-worker")


def partials(directory: Path) -> list[Path]:
    return list(directory.glob(".partial-*")) if directory.is_dir() else []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_kill_9_mid_write_leaves_no_partial_file(
    tmp_path: Path, database_url: str, redis_db: str
) -> None:
    """The worker dies while its store file is half written: the takeover writes the image
    again, and the scrubber's housekeeping removes the dead worker's `.partial-*` file."""
    images = tmp_path / "images"
    conf = [
        *shared_sections(tmp_path, database_url, redis_db, images),
        "[task]",
        f"lease_time = {LEASE}",
        "[scrubber]",
        "wakeup_time = 1",
        "lease_time = 2",  # a .partial-* file untouched this long is abandoned
    ]
    # Large enough that the write takes many polls of the store directory.
    image = random_image(tmp_path / "image.raw", 256 * MiB + 7)
    with (
        topology(tmp_path, conf) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        topo.start_api()
        first_worker = topo.start_worker()
        image_id = create_and_stage(client, image)
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text

        def writing() -> list[Path] | None:
            found = partials(images)
            if found:
                # Freeze it mid-write, so what is seen is what the kill leaves.
                os.killpg(first_worker.pid, signal.SIGSTOP)
            return found or None

        # Polled often: on a quiet machine the whole write takes about a tenth of a second.
        [dead_partial] = wait_for(
            "the worker to start writing the store", writing, 120, every=0.002
        )
        assert dead_partial.exists()
        assert not (images / image_id).exists()
        topo.kill(first_worker)
        assert dead_partial.stat().st_size < image.size

        topo.start_worker()
        topo.start("glimpse-scrubber", "--daemon")
        settled = image_when_settled(client, image_id, topo)
        assert settled["status"] == "active", topo.logs()
        assert settled["os_hash_value"] == image.sha512
        assert downloaded_sha512(client, image_id) == image.sha512
        wait_for("housekeeping to remove the partial file", lambda: not partials(images) or None)

    assert [p.name for p in images.iterdir()] == [image_id]
    assert list((tmp_path / "staging").iterdir()) == []
    assert active_locations(database_url, image_id) == ["file"]
    assert f"removed abandoned upload {dead_partial.as_uri()}" in topo.log("glimpse-scrubber")
