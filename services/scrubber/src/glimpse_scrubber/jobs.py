"""The scrubber's jobs, run in order on every pass, and what they share."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
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
            "scrubbed %d locations (%d failed, retried next pass); %d images now deleted",
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


JOBS: Final[tuple[Job, ...]] = (check_database, scrub_deleted_data, clean_keys, clean_leftovers)
