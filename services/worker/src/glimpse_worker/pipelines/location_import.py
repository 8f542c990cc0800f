"""The location_import job (2.17 add-location): record the location, then hash its data.

As Glance's location_import flow:
- The store serving the URL is found (an http(s) URL passes the URL filter again, as it might
  resolve elsewhere now) and the location is recorded with the size that store reports.
- With validation_data the image is `importing` while its data is read and hashed with the
  given algorithm; a match makes it active, a mismatch (or data that cannot be read in
  `http_retries` attempts) fails the task and reverts the image to queued, hashes cleared.
- Without it the image is active at once and its checksum and os_hash_value follow once the
  data has been read; data that cannot be read leaves them unset, and the task still succeeds.
- With `do_secure_hash = False` nothing is read: validation_data, if any, is taken as given.

A location added this way points at data this service did not write: a revert takes the
record off the image and never deletes the data. As in Glance, an http location stays on the
image it reverts to queued (bug 2076648; clients, tempest among them, expect `stores` to name
it); deleting the image drops the record (DeletionService).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image, Task
from glimpse.domain.errors import InvalidInput, LimitExceeded
from glimpse.domain.images import ImageStatus
from glimpse.domain.redaction import redact_text
from glimpse.domain.tasks import IMPORT_LOCK
from glimpse.net.deadline import DeadlineExceeded, within
from glimpse.net.urlfilter import URLFilter
from glimpse.services.locations import ResolvedLocation, locate
from glimpse.stores.base import Capability, StoreError
from glimpse.stores.metering import Meter, metered
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

# What an image reverted to queued no longer has.
_CLEARED: Final = {"os_hash_algo": None, "os_hash_value": None, "checksum": None, "size": None}


class LocationImportFailed(Exception):
    """The location cannot be added; the message becomes the task's."""


@dataclass(frozen=True, slots=True)
class _Job:
    runtime: WorkerRuntime
    task: Task
    image_id: str
    url: str
    validation: dict[str, str]
    progress: Progress

    @property
    def algo(self) -> str:
        return self.validation.get("os_hash_algo", self.runtime.settings.hashing_algorithm)


def _job(runtime: WorkerRuntime, task: Task, progress: Progress) -> _Job:
    url = task.input.get("loc_url")
    validation = task.input.get("validation_data") or {}
    if task.image_id is None or not isinstance(url, str) or not isinstance(validation, dict):
        msg = f"Task {task.id} has no location to add"
        raise LocationImportFailed(msg)
    return _Job(runtime, task, task.image_id, url, validation, progress)


async def run(runtime: WorkerRuntime, task: Task, progress: Progress) -> dict[str, Any]:
    """Add the task's location to its image; the task's result. Safe to run again: a location
    already recorded by an earlier run of this task is not recorded twice."""
    job = _job(runtime, task, progress)
    try:
        location = await locate(
            runtime.stores, URLFilter(runtime.settings.import_filtering_opts), job.url
        )
    except InvalidInput as exc:
        raise LocationImportFailed(exc.message) from None
    cap = runtime.settings.image_size_cap
    if location.size > cap:
        msg = f"The image is too large: image_size_cap is {cap} bytes"
        raise LocationImportFailed(msg)
    secure = runtime.settings.do_secure_hash
    checking = bool(job.validation) and secure
    await _record(job, location, checking=checking)
    if not secure:
        await _conclude(job, ImageStatus.ACTIVE, dict(job.validation))
    elif checking:
        meter = await _hash(job, location)
        if isinstance(meter, str):
            msg = f"Hash calculation failed for image {job.image_id} data: {meter}"
            raise LocationImportFailed(msg)
        if meter.hash_value != job.validation["os_hash_value"]:
            msg = (
                f"os_hash_value: ({job.validation['os_hash_value']}) not matched with actual "
                f"os_hash_value: ({meter.hash_value})"
            )
            raise LocationImportFailed(msg)
        await _conclude(job, ImageStatus.IMPORTING, _hashes(meter))
    else:
        meter = await _hash(job, location)
        hashes = _hashes(meter) if isinstance(meter, Meter) else {"os_hash_algo": None}
        await _conclude(job, ImageStatus.ACTIVE, hashes)
    return {"image_id": job.image_id}


async def _record(job: _Job, location: ResolvedLocation, *, checking: bool) -> None:
    """Record the location (queued -> importing while it is checked, else -> active)."""
    target = ImageStatus.IMPORTING if checking else ImageStatus.ACTIVE
    async with job.runtime.database.write() as session:
        repo = ImageRepository(session)
        image = await _ours(repo, job)
        held = [loc for loc in (await repo.record(image)).locations if loc.value == job.url]
        if image.status == ImageStatus.QUEUED:
            if not held:
                await repo.add_location(job.image_id, job.url, location.metadata)
            values: dict[str, Any] = {"size": location.size}
            if job.runtime.settings.do_secure_hash:
                values["os_hash_algo"] = job.algo
            await repo.claim_status(job.image_id, ImageStatus.QUEUED, target, **values)
        elif image.status != target or not held:
            # Not this task's doing (a resumed run finds its own work as it left it).
            msg = f"Image {job.image_id} is no longer queued"
            raise LocationImportFailed(msg)


async def _hash(job: _Job, location: ResolvedLocation) -> Meter | str:
    """The data read and hashed, in at most http_retries attempts; else why it could not be."""
    settings = job.runtime.settings
    store = job.runtime.stores.get(location.store_id)
    if store is None:  # pragma: no cover -- locate() only returns enabled stores
        return f"store {location.store_id} is not enabled"
    cap = settings.image_size_cap

    def too_big() -> LimitExceeded:
        return LimitExceeded(f"The image is too large: image_size_cap is {cap} bytes")

    async def read(meter: Meter) -> None:
        async for _ in metered(store.get(job.url), meter, limit=cap, on_limit=too_big):
            await job.progress.beat(report=False)  # a long read keeps its lease

    reason = ""
    attempts = settings.http_retries
    for attempt in range(1, attempts + 1):
        meter = Meter(job.algo)
        try:
            await within(settings.location_add_timeout, "reading the data", read(meter))
        except (StoreError, OSError, DeadlineExceeded) as exc:
            reason = redact_text(str(exc)) or type(exc).__name__
            log.info(
                "location import %s: reading the data failed (%d/%d): %s",
                job.task.id,
                attempt,
                attempts,
                reason,
            )
            continue
        return meter
    log.warning(
        "location import %s: could not hash image %s: %s", job.task.id, job.image_id, reason
    )
    return reason


def _hashes(meter: Meter) -> dict[str, Any]:
    return {
        "size": meter.size,
        "checksum": meter.checksum,
        "os_hash_algo": meter.hash_algo,
        "os_hash_value": meter.hash_value,
    }


async def _conclude(job: _Job, expected: ImageStatus, values: dict[str, Any]) -> None:
    """The image active with `values`, and the lock released, if this task still holds it."""
    async with job.runtime.database.write() as session:
        repo = ImageRepository(session)
        await _ours(repo, job)
        if not await repo.claim_status(job.image_id, expected, ImageStatus.ACTIVE, **values):
            msg = f"Image {job.image_id} is no longer {expected}"
            raise LocationImportFailed(msg)
        await repo.set_properties(job.image_id, {IMPORT_LOCK: None})


async def _ours(repo: ImageRepository, job: _Job) -> Image:
    image = await repo.get(job.image_id, lock=True)
    if image is None:
        msg = f"Image {job.image_id} was deleted"
        raise LocationImportFailed(msg)
    if (await repo.properties(job.image_id)).get(IMPORT_LOCK) != job.task.id:
        msg = f"Image {job.image_id} is locked by another operation"
        raise LocationImportFailed(msg)
    return image


async def revert(runtime: WorkerRuntime, task: Task) -> None:
    """Glance's revert, if this task still holds the image: an image that did not become
    active is queued again with no hashes, and the location this task added leaves it unless
    it is in a read-only (http) store; the lock is released."""
    if task.image_id is None:
        return
    url = task.input.get("loc_url")
    async with runtime.database.write() as session:
        repo = ImageRepository(session)
        image = await repo.get(task.image_id, lock=True)
        if image is None or (await repo.properties(task.image_id)).get(IMPORT_LOCK) != task.id:
            return
        if image.status in (ImageStatus.QUEUED, ImageStatus.IMPORTING):
            for location in (await repo.record(image)).locations:
                if location.value == url and not _read_only(runtime, location.store_id):
                    await repo.drop_location(location)
            await repo.claim_status(
                image.id, ImageStatus(image.status), ImageStatus.QUEUED, **_CLEARED
            )
        await repo.set_properties(task.image_id, {IMPORT_LOCK: None})


def _read_only(runtime: WorkerRuntime, store_id: str | None) -> bool:
    store = runtime.stores.get(store_id or runtime.stores.default_id)
    return store is not None and Capability.DELETE not in store.capabilities
