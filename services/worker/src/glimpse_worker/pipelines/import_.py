"""The import job: staged data into the target stores (side by side), then the image goes
active. For copy-image the image is active throughout and keeps its size and hashes.

Every step is safe to run again. The task is claimed with a conditional UPDATE (pending ->
processing, or a processing task whose worker's lease ran out), so a message delivered twice
does nothing the second time, and a message redelivered after its worker died takes over.
Stores already written are dropped from `os_glance_importing_to_stores` as each is recorded,
so a takeover continues where the dead worker stopped; a store write that fails leaves nothing
behind (CheckedStore.put's contract). Another import may take over a lock it finds stale;
each store's outcome is recorded only while this task still holds the lock.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import Any, Final

from glimpse import metrics
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Image, ImageLocation, Task, utcnow
from glimpse.domain.images import ImageStatus
from glimpse.domain.imports import USER_TOKEN, ImportTaskInput
from glimpse.domain.redaction import redact_data, redact_text
from glimpse.domain.tasks import (
    COPY_IMAGE,
    FAILED_IMPORT,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    KNOWN_METHODS,
    TASK_TYPE_LEGACY_IMPORT,
    TASK_TYPE_LOCATION_IMPORT,
    TaskStatus,
    store_list,
)
from glimpse.logs import bind_job
from glimpse_worker.pipelines import limits, location_import
from glimpse_worker.pipelines.existing import from_existing
from glimpse_worker.pipelines.glance_download import put_back_metadata
from glimpse_worker.pipelines.guarded import Guarded, SourceFailed
from glimpse_worker.pipelines.prepare import Prepared, prepare, survey
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.pipelines.sources import ImportJob, discard_staged, fetch
from glimpse_worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


PARALLEL_STORE_WRITES: Final = 4  # target stores written at the same time, at most


class ImportFailed(Exception):
    """The import cannot complete; the message becomes the task's."""


class LockLost(ImportFailed):
    """The image is no longer this task's to change."""


class WriteStopped(Exception):
    """A store write given up because the import failed elsewhere."""


class StoreFailed(ImportFailed):
    """Writing to one store failed while every store had to succeed."""

    def __init__(self, store_id: str, cause: Exception) -> None:
        super().__init__(f"Import into store {store_id} failed: {cause}")
        self.store_id = store_id


async def run(runtime: WorkerRuntime, task_id: str) -> float | None:
    """Run (or resume) import task `task_id`; a no-op if it is finished or held by a live
    worker. Returns, in the latter case, the seconds until that worker's lease ends: if the
    worker died, the task is the next claimant's then (None: nothing left to look at)."""
    progress = Progress(runtime, task_id)
    async with runtime.database.write() as session:
        tasks = TaskRepository(session)
        if not await tasks.claim(task_id, progress.lease_until()):
            task = await tasks.get(task_id)
            if task is None or task.status != TaskStatus.PROCESSING or task.lease_until is None:
                log.info("import task %s: finished already", task_id)
                return None
            log.info("import task %s: held by another worker's lease", task_id)
            return max((task.lease_until - utcnow()).total_seconds(), 0.0) + 1.0
        task = await tasks.get(task_id)
    if task is None or task.image_id is None:
        return None
    progress.image_id = task.image_id
    bind_job(task.request_id, task.user_id, task.owner)
    if task.type == TASK_TYPE_LOCATION_IMPORT:
        await _add_location(runtime, task, progress)
        return None
    task_input = ImportTaskInput.from_task(task.type, task.input)
    started = time.monotonic()
    try:
        result = await _import(runtime, task, task_input, progress)
    except Exception as exc:
        log.warning("import task %s failed: %s", task_id, exc, exc_info=True)
        failed_store = exc.store_id if isinstance(exc, StoreFailed) else None
        await _fail(runtime, task, task_input, str(exc) or type(exc).__name__, failed_store)
        _count(task_input, "failure", time.monotonic() - started, progress.copied)
        return None
    await _finish(runtime, task_id, TaskStatus.SUCCESS, None, result)  # keeps "Copied N MiB"
    _count(task_input, "success", time.monotonic() - started, progress.copied)
    log.info("import task %s: image %s active", task_id, task.image_id)
    return None


async def _add_location(runtime: WorkerRuntime, task: Task, progress: Progress) -> None:
    """A location_import task: its own steps and revert, this job's claim and outcome."""
    try:
        result = await location_import.run(runtime, task, progress)
    except Exception as exc:
        log.warning("location import task %s failed: %s", task.id, exc, exc_info=True)
        await location_import.revert(runtime, task)
        await _finish(runtime, task.id, TaskStatus.FAILURE, str(exc) or type(exc).__name__, None)
        return
    await _finish(runtime, task.id, TaskStatus.SUCCESS, None, result)
    log.info("location import task %s: image %s active", task.id, task.image_id)


def _count(task_input: ImportTaskInput, outcome: str, seconds: float, written: int) -> None:
    name = task_input.request.method.name
    method = name if name in KNOWN_METHODS else "other"  # a bounded label
    metrics.IMPORT_JOBS.labels(method, outcome).inc()
    metrics.IMPORT_SECONDS.labels(method, outcome).observe(seconds)
    if written:
        metrics.IMPORT_BYTES.labels(method).inc(written)


async def _import(
    runtime: WorkerRuntime, task: Task, task_input: ImportTaskInput, progress: Progress
) -> dict[str, Any]:
    image_id = task.image_id
    assert image_id is not None  # noqa: S101 -- checked by run()
    must_succeed = task_input.request.all_stores_must_succeed
    copying = task_input.request.method.name == COPY_IMAGE
    # copy-image adds stores to an active image; the other methods bring an importing one
    # to life.
    expected = ImageStatus.ACTIVE if copying else ImageStatus.IMPORTING
    async with runtime.database.read() as session:
        repo = ImageRepository(session)
        image = await repo.get(image_id)
        properties = await repo.properties(image_id) if image is not None else {}
    if image is None or image.status != expected:
        raise ImportFailed(f"Image {image_id} is no longer {expected}")
    if properties.get(IMPORT_LOCK) != task.id:
        raise LockLost(f"Image {image_id} is locked by another import")
    await limits.check_import(runtime, task, image, task_input.request.method.name)
    # Keyed by image id, the staged data is found without being recorded.
    staged = runtime.stores.work.location_for(image_id)
    job = ImportJob(runtime, task, image, properties, task_input, staged, progress)
    remaining = store_list(properties.get(IMPORTING_TO_STORES))
    writes = _StoreWrites(
        runtime, task, staged, progress, expected=expected, must_succeed=must_succeed
    )
    if not copying:  # a copy reads the image's own locations (_write_stores)
        image = await fetch(job)
        job = replace(job, image=image)
    prepared = await _write_stores(job, writes, remaining, copying=copying)
    meter = None if prepared is None else prepared.meter
    targets = task_input.targets(runtime.stores.default_id)
    async with runtime.database.write() as session:
        repo = ImageRepository(session)
        await _still_ours(repo, image_id, task.id, expected)
        record = await repo.record(image)
        written = [loc.store_id for loc in record.locations if loc.store_id in targets]
        failed = store_list(record.properties.get(FAILED_IMPORT))
        if not written:
            raise ImportFailed(f"Import failed in every store: {', '.join(failed)}")
        if prepared is not None and meter is not None:
            await repo.activate(
                image_id, ImageStatus.IMPORTING, {**meter.image_data(), **prepared.image_values()}
            )
            # The size recorded now counts against the quota in the reservation's stead.
            await ReservationRepository(session).release(image_id)
        await repo.set_properties(
            image_id,
            {
                **(prepared.properties if prepared is not None else {}),
                IMPORT_LOCK: None,
                IMPORTING_TO_STORES: "",  # as Glance leaves it
            },
        )
    await discard_staged(runtime, image_id)
    return {"image_id": image_id, "stores": written, "failed": failed}


async def _write_stores(
    job: ImportJob, writes: _StoreWrites, remaining: list[str], *, copying: bool
) -> Prepared | None:
    """Bring the data to `remaining` stores; what preparing it learned (None for a copy)."""
    if copying:
        runtime, image = job.runtime, job.image
        # The image's own data, copied: nothing to prepare, nothing new to learn about it.
        if len(remaining) == 1:
            # The usual copy: straight from a location to the store, verified on the way.
            await from_existing(runtime, image, partial(writes.run_from, remaining[0]))
        elif remaining:
            await fetch(job)  # staged once (verified) for every target to read
            await writes.run(remaining)
        return None
    prepared = await prepare(job)
    # Hashed and inspected once, while the stores are written (every store is sent the same
    # bytes); each store holds its last block back until this passed.
    checked = asyncio.ensure_future(survey(job, prepared))
    try:
        await writes.run(remaining, checked)
    finally:
        await asyncio.wait([checked])  # never left running, whatever the writes did
    checked.result()  # raises what the pass raised (when no write did)
    return prepared


class _StoreWrites:
    """One import's writes to its target stores, side by side (PARALLEL_STORE_WRITES at
    most), each reading the data itself (a slow store holds no other back). A store that
    fails fails the import when all stores must succeed: the other writes stop at their next
    block (a write that fails leaves nothing; one already recorded is removed by the revert).
    Otherwise the store is listed in os_glance_failed_import and the others go on. Data that
    fails (SourceFailed: unreadable, or refused by its checks) fails the writes it feeds and
    is raised: it is not the stores' failure.

    Writes are stopped by failing their data stream, never by cancelling their tasks: a
    cancellation could land in the middle of a database transaction."""

    def __init__(
        self,
        runtime: WorkerRuntime,
        task: Task,
        staged: str,
        progress: Progress,
        *,
        expected: ImageStatus,
        must_succeed: bool,
    ) -> None:
        assert task.image_id is not None  # noqa: S101 -- checked by run()
        self.runtime = runtime
        self.task = task
        self.image_id = task.image_id
        self.staged = staged
        self.progress = progress
        self.expected = expected
        self.must_succeed = must_succeed
        self.stop = asyncio.Event()
        self.failures: list[ImportFailed] = []
        self._slots = asyncio.Semaphore(PARALLEL_STORE_WRITES)

    async def run(self, stores: list[str], checked: asyncio.Future[None] | None = None) -> None:
        """Write the staged data to `stores`; with `checked`, each write holds its last block
        back until those checks passed (and fails if they did not)."""
        await self._run(stores, lambda: self.runtime.stores.work.get(self.staged), checked)

    async def run_from(self, store_id: str, data: AsyncIterator[bytes]) -> None:
        """Write `data` (one pass, so one store) to `store_id`."""
        await self._run([store_id], lambda: data, None)

    async def _run(
        self,
        stores: list[str],
        source: Callable[[], AsyncIterator[bytes]],
        checked: asyncio.Future[None] | None,
    ) -> None:
        lanes = {store_id: Guarded(source(), checked) for store_id in stores}
        # Every write runs to its end before anything is raised: the revert must not race
        # them.
        outcomes = await asyncio.gather(
            *(self._write(s, data) for s, data in lanes.items()), return_exceptions=True
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        failed = [data.error for data in lanes.values() if data.error is not None]
        if failed:
            # The data's failure, not the stores': the import's (or the next location's).
            raise SourceFailed(failed[0].cause) from failed[0].cause
        if self.failures:
            # The first failure is the import's; the others stopped because of it.
            raise self.failures[0]

    def _fail_all(self, failure: ImportFailed) -> None:
        self.failures.append(failure)
        self.stop.set()

    async def _write(self, store_id: str, data: Guarded) -> None:
        async with self._slots:
            if self.stop.is_set():
                return
            try:
                await _copy(
                    self.runtime,
                    self.task,
                    store_id,
                    _until_stopped(self.progress.count(data, lane=store_id), self.stop),
                    expected=self.expected,
                )
            except (WriteStopped, SourceFailed):
                pass
            except LockLost as exc:
                self._fail_all(exc)
            except Exception as exc:  # noqa: BLE001 -- any store failure is that store's
                if data.error is None:  # else a driver wrapped SourceFailed: not the store's
                    await self._store_failed(store_id, exc)
            else:
                await self.progress.beat(force=True)

    async def _store_failed(self, store_id: str, exc: Exception) -> None:
        if self.stop.is_set():
            return  # the import fails already (a driver may have wrapped WriteStopped)
        self.progress.drop(store_id)
        log.warning("import %s: store %s failed: %s", self.task.id, store_id, exc)
        if self.must_succeed:
            self._fail_all(StoreFailed(store_id, exc))
            return
        async with self.runtime.database.write() as session:
            await _done_with(ImageRepository(session), self.image_id, store_id, failed=True)


async def _until_stopped(chunks: AsyncIterable[bytes], stop: asyncio.Event) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        if stop.is_set():
            msg = "stopped: another store failed"
            raise WriteStopped(msg)
        yield chunk


async def _done_with(repo: ImageRepository, image_id: str, store_id: str, *, failed: bool) -> None:
    """Record that `store_id` is done (written, or failed) on the image's tracking
    properties, under the image's row lock: stores finish side by side."""
    await repo.get(image_id, lock=True)
    properties = await repo.properties(image_id)
    values: dict[str, str | None] = {
        IMPORTING_TO_STORES: ",".join(
            s for s in store_list(properties.get(IMPORTING_TO_STORES)) if s != store_id
        )
    }
    if failed:
        values[FAILED_IMPORT] = _add_to_store_list(properties.get(FAILED_IMPORT), store_id)
    await repo.set_properties(image_id, values)


def _add_to_store_list(stores: str | None, store_id: str) -> str:
    """The comma-separated store list `stores` with `store_id` at its end (once)."""
    return ",".join(dict.fromkeys([*store_list(stores), store_id]))


async def _copy(
    runtime: WorkerRuntime,
    task: Task,
    store_id: str,
    data: AsyncIterator[bytes],
    *,
    expected: ImageStatus,
) -> None:
    """Write `data` to one store and record the location, or leave nothing behind."""
    image_id = task.image_id
    assert image_id is not None  # noqa: S101 -- checked by run()
    store = runtime.stores.get(store_id)
    if store is None:
        raise ImportFailed(f"Store {store_id} is not configured on this worker")
    stored = await store.put(image_id, data)
    try:
        async with runtime.database.write() as session:
            repo = ImageRepository(session)
            await _still_ours(repo, image_id, task.id, expected)
            await repo.add_location(image_id, stored.location, {"store": store_id})
            await _done_with(repo, image_id, store_id, failed=False)
    except BaseException:
        # Not recorded: the data must not outlive the failure.
        await asyncio.shield(store.delete_if_present(stored.location))
        raise


async def _still_ours(
    repo: ImageRepository, image_id: str, task_id: str, expected: ImageStatus
) -> None:
    """Lock the image's row; fail unless it is still `expected` and this task holds its
    import lock (another import may have taken over a lock it judged stale)."""
    image = await repo.get(image_id, lock=True)
    if image is None or image.status != expected:
        raise LockLost(f"Image {image_id} is no longer {expected}")
    if (await repo.properties(image_id)).get(IMPORT_LOCK) != task_id:
        raise LockLost(f"Image {image_id} is locked by another import")


async def _fail(
    runtime: WorkerRuntime,
    task: Task,
    task_input: ImportTaskInput,
    message: str,
    failed_store: str | None = None,
) -> None:
    """Glance's revert: the data written by this import is removed and the lock released. An
    image being imported is queued again (its staged data too is removed: a queued image is
    staged afresh); an image being copied stays active with the data it had."""
    image_id = task.image_id
    assert image_id is not None  # noqa: S101 -- checked by run()
    locations: list[ImageLocation] = []
    ours = True
    async with runtime.database.write() as session:
        repo = ImageRepository(session)
        image = await repo.get(image_id, lock=True)
        properties = await repo.properties(image_id) if image is not None else {}
        ours = image is None or properties.get(IMPORT_LOCK) == task.id
        if ours:
            # The data is given up: so is the storage it reserved (a copy reserves none).
            await ReservationRepository(session).release(image_id)
        if image is not None and ours:
            locations = await _revert(
                runtime,
                repo,
                task,
                image,
                properties,
                task_input=task_input,
                failed_store=failed_store,
            )
    for location in locations:
        store = runtime.stores.get(location.store_id or runtime.stores.default_id)
        if store is not None:
            await store.delete_if_present(location.value)
    if ours:
        await discard_staged(runtime, image_id)
    await _finish(runtime, task.id, TaskStatus.FAILURE, message, None)


async def _revert(
    runtime: WorkerRuntime,
    repo: ImageRepository,
    task: Task,
    image: Image,
    properties: dict[str, str],
    *,
    task_input: ImportTaskInput,
    failed_store: str | None,
) -> list[ImageLocation]:
    """Inside _fail's transaction: undo what the import did to its image; the locations it
    retired, whose data goes once this commits."""
    locations: list[ImageLocation] = []
    if task_input.request.method.name == COPY_IMAGE:
        targets = task_input.targets(runtime.stores.default_id)
        held = (await repo.record(image)).locations
        locations = [loc for loc in held if loc.store_id in targets]
    elif image.status == ImageStatus.IMPORTING:
        locations = (await repo.record(image)).locations
        await repo.claim_status(image.id, ImageStatus.IMPORTING, ImageStatus.QUEUED, {"size": None})
        # glance-download's metadata, as it was before (read afresh: the job recorded it).
        current = await TaskRepository(repo.session).get(task.id)
        if current is not None:
            before = ImportTaskInput.from_task(current.type, current.input).metadata_before
            await put_back_metadata(repo, image.id, before)
    for location in locations:
        await repo.retire_location(location, request_id=task.request_id)
    values: dict[str, str | None] = {IMPORT_LOCK: None, IMPORTING_TO_STORES: ""}
    if failed_store is not None:
        values[FAILED_IMPORT] = _add_to_store_list(properties.get(FAILED_IMPORT), failed_store)
    await repo.set_properties(image.id, values)
    if task.type == TASK_TYPE_LEGACY_IMPORT:
        # The Tasks API's import made the image for this data: it goes too, as in Glance.
        await repo.mark_deleted(image, delayed=False, request_id=task.request_id)
    return locations


async def _finish(
    runtime: WorkerRuntime,
    task_id: str,
    status: TaskStatus,
    message: str | None,
    result: dict[str, Any] | None,
) -> None:
    expires_at = utcnow() + timedelta(hours=runtime.settings.task.task_time_to_live)
    # A failure's text may quote a URL (a store's or a library's message): never its secrets.
    message = redact_text(message) if message is not None else None
    async with runtime.database.write() as session:
        tasks = TaskRepository(session)
        await tasks.finish(
            task_id, status, message=message, result=redact_data(result), expires_at=expires_at
        )
        # The caller's token is kept no longer than its task needs it.
        task = await tasks.get(task_id)
        if task is not None and USER_TOKEN in task.input:
            kept = {key: value for key, value in task.input.items() if key != USER_TOKEN}
            await tasks.update_input(task_id, kept)
