"""The scrubber's jobs, run in order on every pass, and what they share."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import utcnow
from glimpse.jobs.publisher import JobPublisher
from glimpse.services.deletion import DeletionService
from glimpse.services.housekeeping import Housekeeping
from glimpse.services.key_cleanup import KeyCleanupService
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger("glimpse_scrubber")


@dataclass(frozen=True, slots=True)
class ScrubberRuntime:
    """Built once per process: the scrubber's own settings name the stores it can reach."""

    settings: Settings
    database: Database
    stores: StoreRegistry
    deletion: DeletionService

    @classmethod
    def build(cls, settings: Settings) -> ScrubberRuntime:
        database = Database.from_settings(settings)
        stores = StoreRegistry.from_settings(settings)
        return cls(settings, database, stores, DeletionService(settings, database, stores))

    async def aclose(self) -> None:
        await self.stores.aclose()
        await self.database.dispose()


Job = Callable[[ScrubberRuntime], Awaitable[None]]


async def check_database(runtime: ScrubberRuntime) -> None:
    """Fail the pass when the database cannot be reached (CRITICAL, per the Pike semantics)."""
    async with runtime.database.read() as session:
        await session.execute(sa.text("SELECT 1"))


async def scrub_deleted_data(runtime: ScrubberRuntime) -> None:
    """Delayed delete: remove data whose scrub_time has passed, and retry failed deletions."""
    report = await runtime.deletion.scrub()
    if report.removed or report.failed or report.images_deleted:
        log.info(
            "scrubbed %d locations (%d failed, retried after a backoff); %d images now deleted",
            report.removed,
            report.failed,
            report.images_deleted,
        )


async def clean_keys(runtime: ScrubberRuntime) -> None:
    """Delete the encryption keys of images that are really gone (after scrub_deleted_data,
    which turns pending_delete images into deleted ones), and retry failed key deletions."""
    report = await KeyCleanupService(runtime.settings, runtime.database).run()
    if report.deleted or report.failed or report.trusts_created or report.trusts_deleted:
        log.info(
            "key cleanup: %d keys deleted (%d failed, retried later); %d trusts created, "
            "%d deleted",
            report.deleted,
            report.failed,
            report.trusts_created,
            report.trusts_deleted,
        )


async def clean_leftovers(runtime: ScrubberRuntime) -> None:
    """Staged data and import work files of finished images; abandoned partial uploads."""
    removed = await Housekeeping(runtime.settings, runtime.database, runtime.stores).run()
    if removed:
        log.info("removed %d leftover files", removed)


async def requeue_pending(runtime: ScrubberRuntime) -> None:
    """Send again the messages of import tasks left pending for longer than
    `[task] requeue_pending_after` (their message was lost: the broker was down when the API
    sent it, or lost it), and of processing tasks whose worker's lease ran out. A duplicate is
    harmless: a worker takes a task only through the conditional claim."""
    after = timedelta(seconds=runtime.settings.task.requeue_pending_after)
    async with runtime.database.read() as session:
        stale = await TaskRepository(session).stalled(utcnow() - after)
    if not stale:
        return
    publisher = JobPublisher(runtime.settings)
    try:
        sent = [task_id for task_id in stale if await publisher.publish_import(task_id)]
    finally:
        await publisher.aclose()
    async with runtime.database.write() as session:
        await TaskRepository(session).touch_pending(sent)
    log.info("requeued %d of %d stalled import tasks", len(sent), len(stale))


JOBS: Final[tuple[Job, ...]] = (
    check_database,
    scrub_deleted_data,
    clean_keys,
    clean_leftovers,
    requeue_pending,
)
