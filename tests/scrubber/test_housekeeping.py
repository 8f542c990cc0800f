"""Leftovers in the reserved stores and abandoned partial uploads are swept; live data is not."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from pathlib import Path
from typing import Any

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.tables import Image, ImageProperty
from glimpse.domain.tasks import IMPORT_LOCK
from glimpse.services.housekeeping import Housekeeping, image_id_of
from glimpse.stores.registry import StoreRegistry

OLD = time.time() - 3600


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
