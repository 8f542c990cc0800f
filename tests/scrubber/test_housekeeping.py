"""Leftovers in the reserved stores and abandoned partial uploads (`.partial-*` files, pending
S3 multipart uploads) are swept; live data is not."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageProperty
from glimpse.domain.tasks import IMPORT_LOCK
from glimpse.services.housekeeping import Housekeeping, image_id_of
from glimpse.stores.registry import StoreRegistry
from glimpse.stores.s3 import S3Store
from glimpse.stores.s3_listing import PendingUpload
from store_servers import MotoServer, s3_client

OLD = time.time() - 3600
S3_ACCESS = "sweep-access"
S3_SECRET = "sweep-secret"


async def image_in(
    database: Database, status: str, *, deleted: bool = False, lock: str | None = None
) -> str:
    image_id = str(uuid.uuid4())
    async with database.write() as session:
        session.add(Image(id=image_id, status=status, visibility="shared", deleted=deleted))
        if lock is not None:
            await session.flush()
            session.add(ImageProperty(image_id=image_id, name=IMPORT_LOCK, value=lock))
    return image_id


def put(directory: Path, name: str, *, modified: float = OLD) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(b"leftover?")
    os.utime(path, (modified, modified))
    return path


def s3_settings(
    make_settings: Any, tmp_path: Path, moto: MotoServer, bucket: str, lease_time: int
) -> Settings:
    cold = {
        "s3_store_host": moto.endpoint,
        "s3_store_access_key": S3_ACCESS,
        "s3_store_secret_key": S3_SECRET,
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": True,
        "s3_store_bucket_url_format": "path",
    }
    settings: Settings = make_settings(
        enabled_backends="fast:file, cold:s3",
        stores={"fast": {"filesystem_store_datadir": str(tmp_path / "fast")}, "cold": cold},
        scrubber={"lease_time": lease_time},
    )
    return settings


def start_upload(s3: Any, bucket: str, key: str) -> str:
    """A multipart upload with one part, left pending as a worker killed mid-upload leaves it."""
    upload_id: str = s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"]
    s3.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=1, Body=b"part one")
    return upload_id


def pending_keys(s3: Any, bucket: str) -> list[str]:
    return sorted(u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


async def sweep(
    settings: Settings, database: Database, clock: Callable[[], float] = time.time
) -> int:
    registry = StoreRegistry.from_settings(settings)
    try:
        return await Housekeeping(settings, database, registry, clock=clock).run()
    finally:
        await registry.aclose()


def test_image_ids_are_recognised() -> None:
    image_id = str(uuid.uuid4())
    assert image_id_of(image_id) == image_id
    assert image_id_of(f"{image_id}.qcow2") == image_id
    assert image_id_of(f"{image_id}x") is None
    assert image_id_of("README") is None
    assert image_id_of(".partial-" + image_id) is None


async def test_sweep_keeps_in_flight_imports_and_foreign_files(
    make_settings: Any, database: Database
) -> None:
    settings: Settings = make_settings()
    staging = settings.store_datadir("os_glance_staging_store")
    tasks = settings.store_datadir("os_glance_tasks_store")
    images = settings.store_datadir("file")
    uploading = await image_in(database, "uploading")
    importing = await image_in(database, "importing")
    queued = await image_in(database, "queued")
    active = await image_in(database, "active")
    # copy-image: the image stays active while its import lock is held.
    copying = await image_in(database, "active", lock=str(uuid.uuid4()))
    gone = await image_in(database, "deleted", deleted=True)
    missing = str(uuid.uuid4())
    just_deleted = await image_in(database, "deleted", deleted=True)

    kept = [
        put(staging, uploading),
        put(staging, importing),
        put(staging, copying),
        put(tasks, f"{importing}.qcow2"),
        put(staging, "operator-notes.txt"),
        put(staging, just_deleted, modified=time.time()),
        put(images, ".partial-fresh-upload", modified=time.time()),
        put(images, active),
    ]
    swept = [
        put(staging, queued),
        put(staging, active),
        put(staging, gone),
        put(staging, missing),
        put(tasks, f"{active}.raw"),
        put(images, ".partial-dead-upload"),
    ]
    housekeeping = Housekeeping(settings, database, StoreRegistry.from_settings(settings))
    assert await housekeeping.run() == len(swept)
    assert [path.exists() for path in kept] == [True] * len(kept)
    assert [path.exists() for path in swept] == [False] * len(swept)
    assert await housekeeping.run() == 0


async def test_api_start_sweeps_leftovers(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    settings: Settings = make_settings()
    gone = await image_in(database, "deleted", deleted=True)
    leftover = put(settings.store_datadir("os_glance_staging_store"), gone)
    client = await client_for(settings)
    assert (await client.get("/versions")).status_code == 200  # the API is up meanwhile
    for _ in range(600):  # the sweep runs in the background: poll for up to 30 s
        if not leftover.exists():
            break
        await asyncio.sleep(0.05)
    assert not leftover.exists()


async def test_sweep_aborts_abandoned_s3_uploads_only(
    make_settings: Any,
    database: Database,
    moto_server: MotoServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = f"sweep-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_server, S3_ACCESS, S3_SECRET)
    s3.create_bucket(Bucket=bucket)
    active = await image_in(database, "active")
    gone = await image_in(database, "deleted", deleted=True)
    saving = await image_in(database, "saving")  # a direct upload of a huge image, still live
    importing = await image_in(database, "importing", lock=str(uuid.uuid4()))
    copying = await image_in(database, "active", lock=str(uuid.uuid4()))
    missing = str(uuid.uuid4())
    for key in (active, gone, saving, importing, copying, missing, "not-an-image"):
        start_upload(s3, bucket, key)
    listed = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    everything = pending_keys(s3, bucket)
    settings = s3_settings(make_settings, tmp_path, moto_server, bucket, lease_time=60)

    # moto reports one fixed Initiated time (in 2010) for every upload, so the clock is set
    # from what it reports. Younger than lease_time: a live writer may be on it, whatever its
    # image says.
    initiated = max(upload["Initiated"].timestamp() for upload in listed)
    assert await sweep(settings, database, clock=lambda: initiated + 59) == 0
    assert pending_keys(s3, bucket) == everything

    caplog.set_level(logging.INFO, logger="glimpse.services.housekeeping")
    assert await sweep(settings, database) == 3
    aborted = [r.getMessage() for r in caplog.records if "aborted abandoned upload" in r.message]
    assert sorted(line.split()[3] for line in aborted) == sorted([active, gone, missing])
    assert pending_keys(s3, bucket) == sorted([saving, importing, copying, "not-an-image"])
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # nothing was completed
    assert await sweep(settings, database) == 0


async def test_s3_uploads_of_missing_bucket_or_gone_upload(
    make_settings: Any, moto_server: MotoServer, tmp_path: Path
) -> None:
    bucket = f"sweep-{uuid.uuid4().hex[:12]}"
    settings = s3_settings(make_settings, tmp_path, moto_server, bucket, lease_time=1)
    registry = StoreRegistry.from_settings(settings)
    try:
        store = registry.get("cold")
        assert store is not None
        driver = store.driver
        assert isinstance(driver, S3Store)
        assert await driver.pending_uploads() == []  # no bucket yet
        s3 = s3_client(moto_server, S3_ACCESS, S3_SECRET)
        s3.create_bucket(Bucket=bucket)
        key = str(uuid.uuid4())
        upload_id = start_upload(s3, bucket, key)
        [upload] = await driver.pending_uploads()
        assert (upload.key, upload.upload_id) == (key, upload_id)
        assert upload.initiated < time.time()
        await driver.abort_upload(upload)
        await driver.abort_upload(upload)  # NoSuchUpload: already done
        await driver.abort_upload(PendingUpload(key, "no-such-upload", upload.initiated))
        assert await driver.pending_uploads() == []
    finally:
        await registry.aclose()


async def test_sweep_of_an_s3_staging_store(
    make_settings: Any, database: Database, moto_server: MotoServer
) -> None:
    """Objects of images no longer uploading or importing leave the staging bucket, as files
    leave a staging directory; so do stages an API node left half-sent."""
    bucket = f"staging-{uuid.uuid4().hex[:12]}"
    s3 = s3_client(moto_server, S3_ACCESS, S3_SECRET)
    s3.create_bucket(Bucket=bucket)
    staging = {
        "s3_store_host": moto_server.endpoint,
        "s3_store_access_key": S3_ACCESS,
        "s3_store_secret_key": S3_SECRET,
        "s3_store_bucket": bucket,
        "s3_store_bucket_url_format": "path",
    }
    settings: Settings = make_settings(
        stores={"os_glance_staging_store": staging}, scrubber={"lease_time": 60}
    )
    uploading = await image_in(database, "uploading")
    importing = await image_in(database, "importing", lock=str(uuid.uuid4()))
    active = await image_in(database, "active")
    gone = await image_in(database, "deleted", deleted=True)
    missing = str(uuid.uuid4())
    for key in (uploading, importing, active, gone, missing, "operator-notes.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"leftover?")
    start_upload(s3, bucket, gone)

    # Just written: the image may have moved into uploading after its status was read.
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    written = min(item["LastModified"].timestamp() for item in listed)
    assert await sweep(settings, database, clock=lambda: written + 30) == 1  # the upload
    assert pending_keys(s3, bucket) == []

    assert await sweep(settings, database, clock=lambda: time.time() + 120) == 3
    kept = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert kept == sorted([uploading, importing, "operator-notes.txt"])
    assert await sweep(settings, database, clock=lambda: time.time() + 120) == 0
