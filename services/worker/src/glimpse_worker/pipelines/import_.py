"""The import job: staged data into each target store, then the image goes active.

Every step is safe to run again. The task is claimed with a conditional UPDATE (pending ->
processing, or a processing task whose worker's lease ran out), so a message delivered twice
does nothing the second time, and a message redelivered after its worker died takes over.
Stores already written are dropped from `os_glance_importing_to_stores` as each is recorded,
so a takeover continues where the dead worker stopped; a store write that fails leaves nothing
behind (CheckedStore.put's contract).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import ImageLocation, Task, utcnow
from glimpse.domain.errors import LimitExceeded
from glimpse.domain.images import ImageStatus
from glimpse.domain.tasks import (
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    TASK_TYPE_LEGACY_IMPORT,
    TaskStatus,
    import_request,
    store_list,
)
from glimpse.services.image_data import cap_message
from glimpse.services.imports import staged_location
from glimpse.stores.metering import Meter, metered
from glimpse_worker.pipelines.prepare import prepare
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.pipelines.sources import ImportJob, fetch
from glimpse_worker.runtime import WorkerContext

log = logging.getLogger(__name__)


class ImportFailed(Exception):
    """The import cannot complete; the message becomes the task's."""


async def run(ctx: WorkerContext, task_id: str) -> None:
    """Run (or resume) import task `task_id`; a no-op if it is finished or held by a live
    worker."""
    progress = Progress(ctx, task_id)
    async with ctx.database.write() as session:
        tasks = TaskRepository(session)
        if not await tasks.claim(task_id, progress.lease_until()):
            log.info("import task %s: already finished or running elsewhere", task_id)
            return
        task = await tasks.get(task_id)
    if task is None or task.image_id is None:
        return
    try:
        result = await _import(ctx, task, progress)
    except Exception as exc:
        log.warning("import task %s failed: %s", task_id, exc, exc_info=True)
        await _fail(ctx, task, str(exc) or type(exc).__name__)
        return
    await _finish(ctx, task_id, TaskStatus.SUCCESS, None, result)  # keeps "Copied N MiB"
    log.info("import task %s: image %s active", task_id, task.image_id)


async def _import(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    image_id = task.image_id
    assert image_id is not None  # noqa: S101 -- checked by run()
    request = import_request(task.type, task.input)
    must_succeed = bool(request.get("all_stores_must_succeed", True))
    async with ctx.database.read() as session:
        repo = ImageRepository(session)
        image = await repo.get(image_id)
        properties = await repo.properties(image_id) if image is not None else {}
    if image is None or image.status != ImageStatus.IMPORTING:
        raise ImportFailed(f"Image {image_id} is no longer importing")
    if properties.get(IMPORT_LOCK) != task.id:
        raise ImportFailed(f"Image {image_id} is locked by another import")
    staged = staged_location(ctx.settings, image_id)
    job = ImportJob(ctx, task, image, properties, request, staged, progress)
    await fetch(job)
    prepared = await prepare(job)
    remaining = store_list(properties.get(IMPORTING_TO_STORES))
    failed = store_list(properties.get(FAILED_IMPORT))
    meter: Meter | None = None
    for store_id in remaining:
        try:
            meter = await _copy(ctx, image_id, store_id, staged, progress)
        except Exception as exc:
            log.warning("import %s: store %s failed: %s", task.id, store_id, exc)
            if must_succeed:
                raise ImportFailed(f"Import into store {store_id} failed: {exc}") from exc
            failed.append(store_id)
            async with ctx.database.write() as session:
                await _left(ImageRepository(session), image_id, store_id, failed)
    async with ctx.database.read() as session:
        written = (await ImageRepository(session).record(image)).locations
    if not written:
        raise ImportFailed(f"Import failed in every store: {', '.join(failed)}")
    if meter is None:
        # A takeover after every store was written: hash the staged data again.
        meter = await _hash(ctx, image_id, staged)
    async with ctx.database.write() as session:
        repo = ImageRepository(session)
        activated = await repo.claim_status(
            image_id,
            ImageStatus.IMPORTING,
            ImageStatus.ACTIVE,
            size=meter.size,
            **prepared.image_values(),
            checksum=meter.checksum,
            os_hash_algo=meter.hash_algo,
            os_hash_value=meter.hash_value,
        )
        if not activated:
            raise ImportFailed(f"Image {image_id} is no longer importing")
        await repo.set_properties(
            image_id,
            {
                **prepared.properties,
                IMPORT_LOCK: None,
                IMPORTING_TO_STORES: None,
                FAILED_IMPORT: ",".join(failed),
            },
        )
    await ctx.stores.staging.delete_if_present(staged)
    return {"image_id": image_id, "stores": [loc.store_id for loc in written], "failed": failed}


async def _left(repo: ImageRepository, image_id: str, store_id: str, failed: list[str]) -> None:
    """Record that `store_id` is done (written or failed) on the image's tracking properties."""
    remaining = store_list((await repo.properties(image_id)).get(IMPORTING_TO_STORES))
    await repo.set_properties(
        image_id,
        {
            IMPORTING_TO_STORES: ",".join(s for s in remaining if s != store_id),
            FAILED_IMPORT: ",".join(failed),
        },
    )


def _limited(ctx: WorkerContext) -> tuple[int, Any]:
    cap = ctx.settings.image_size_cap
    return cap, lambda: LimitExceeded(cap_message(cap))


async def _copy(
    ctx: WorkerContext, image_id: str, store_id: str, staged: str, progress: Progress
) -> Meter:
    store = ctx.stores.get(store_id)
    if store is None:
        raise ImportFailed(f"Store {store_id} is not configured on this worker")
    cap, too_big = _limited(ctx)
    meter = Meter(ctx.settings.hashing_algorithm)
    data = metered(
        progress.count(ctx.stores.staging.get(staged)), meter, limit=cap, on_limit=too_big
    )
    stored = await store.put(image_id, data)
    try:
        async with ctx.database.write() as session:
            repo = ImageRepository(session)
            await _still_importing(repo, image_id)
            await repo.add_location(image_id, stored.location, {"store": store_id})
            failed = store_list((await repo.properties(image_id)).get(FAILED_IMPORT))
            await _left(repo, image_id, store_id, failed)
    except BaseException:
        # Not recorded: the data must not outlive the failure.
        await asyncio.shield(store.delete_if_present(stored.location))
        raise
    await progress.beat(force=True)
    return meter


async def _still_importing(repo: ImageRepository, image_id: str) -> None:
    image = await repo.get(image_id, lock=True)
    if image is None or image.status != ImageStatus.IMPORTING:
        raise ImportFailed(f"Image {image_id} is no longer importing")


async def _hash(ctx: WorkerContext, image_id: str, staged: str) -> Meter:
    cap, too_big = _limited(ctx)
    meter = Meter(ctx.settings.hashing_algorithm)
    async for _block in metered(ctx.stores.staging.get(staged), meter, limit=cap, on_limit=too_big):
        pass
    log.debug("import of %s: re-hashed %d staged bytes", image_id, meter.size)
    return meter


async def _fail(ctx: WorkerContext, task: Task, message: str) -> None:
    """Glance's revert: the data written by this import is removed, the image is queued again
    (its staged data too is removed: a queued image is staged afresh), the lock released."""
    image_id = task.image_id
    assert image_id is not None  # noqa: S101 -- checked by run()
    locations: list[ImageLocation] = []
    ours = True
    async with ctx.database.write() as session:
        repo = ImageRepository(session)
        image = await repo.get(image_id, lock=True)
        properties = await repo.properties(image_id) if image is not None else {}
        ours = image is None or properties.get(IMPORT_LOCK) == task.id
        if image is not None and ours:
            if image.status == ImageStatus.IMPORTING:
                locations = (await repo.record(image)).locations
                for location in locations:
                    await repo.retire_location(location)
                await repo.claim_status(
                    image_id, ImageStatus.IMPORTING, ImageStatus.QUEUED, size=None
                )
            await repo.set_properties(image_id, {IMPORT_LOCK: None, IMPORTING_TO_STORES: None})
            if task.type == TASK_TYPE_LEGACY_IMPORT:
                # The Tasks API's import made the image for this data: it goes too, as in Glance.
                await repo.mark_deleted(image, delayed=False)
    for location in locations:
        store = ctx.stores.get(location.store_id or ctx.stores.default_id)
        if store is not None:
            await store.delete_if_present(location.value)
    if ours:
        await ctx.stores.staging.delete_if_present(staged_location(ctx.settings, image_id))
    await _finish(ctx, task.id, TaskStatus.FAILURE, message, None)


async def _finish(
    ctx: WorkerContext,
    task_id: str,
    status: TaskStatus,
    message: str | None,
    result: dict[str, Any] | None,
) -> None:
    expires_at = utcnow() + timedelta(hours=ctx.settings.task.task_time_to_live)
    async with ctx.database.write() as session:
        await TaskRepository(session).finish(
            task_id, status, message=message, result=result, expires_at=expires_at
        )
