"""Removing image data from stores, durably: nothing is lost when a store is down.

The row says what must go (see DeletionRepository); the data is removed outside any
transaction, and the row is marked deleted only once the store confirms. A failure leaves the
row pending, so the scrubber's next pass tries again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.deletions import DeletionRepository
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.key_cleanups import KeyCleanupRepository
from glimpse.db.tables import ImageLocation, utcnow
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.logs import job_context
from glimpse.stores.base import Capability, StoreError
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)

SCRUB_BATCH = 500


@dataclass(frozen=True, slots=True)
class ScrubReport:
    removed: int
    failed: int
    images_deleted: int


class DeletionService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: StoreRegistry,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self._clock = clock  # what is due, and when a failed deletion is due again

    async def remove_claimed(self, location: ImageLocation) -> bool:
        """Delete the data of a location this process has claimed; True when it is gone.

        Data that is not this location's alone stays where it is and only the record goes:
        data in a read-only store (an http location: nothing can delete it, so retrying would
        never end), and data another image still holds a location on (one URL may be the
        location of many images; the last one to go takes the data)."""
        assert location.id is not None  # noqa: S101 -- rows from the database have ids
        store = self.stores.get(location.store_id or self.stores.default_id)
        removed = False
        if store is None:
            log.warning(
                "image %s: data at %s is in store %s, which is not enabled here; left for later",
                location.image_id,
                redact_url(location.value),
                location.store_id,
            )
        elif Capability.DELETE not in store.capabilities:
            removed = True
            log.info(
                "image %s: location %s is in read-only store %s; record dropped, data kept",
                location.image_id,
                redact_url(location.value),
                store.name,
            )
        elif await self._held_elsewhere(location):
            removed = True
            log.info(
                "image %s: data at %s is still another image's location; record dropped",
                location.image_id,
                redact_url(location.value),
            )
        else:
            try:
                await store.delete_if_present(location.value)
                removed = True
                # One line per location scrubbed: operators (and tests) can see that concurrent
                # scrubbers removed each piece of data once.
                log.info(
                    "image %s: scrubbed data at %s", location.image_id, redact_url(location.value)
                )
            except (StoreError, OSError) as exc:
                log.warning(
                    "image %s: could not delete %s yet: %s",
                    location.image_id,
                    redact_url(location.value),
                    redact_text(str(exc)),
                )
        async with self.db.write() as session:
            repo = DeletionRepository(session)
            if removed:
                await repo.finish(location.id)
            else:
                retry_at = self._clock() + self._backoff(location.attempts)
                await repo.release(location.id, retry_at)
        return removed

    async def _held_elsewhere(self, location: ImageLocation) -> bool:
        async with self.db.read() as session:
            return await ImageRepository(session).location_in_use(
                location.value, exclude_image=location.image_id
            )

    def _backoff(self, failed_before: int) -> timedelta:
        """The wait after the (failed_before + 1)th failed attempt: doubling, capped."""
        options = self.settings.scrubber
        exponent = min(failed_before, 32)  # 2**32 s is past any cap; no huge integers
        seconds = min(options.deletion_retry_initial * 2**exponent, options.deletion_retry_max)
        return timedelta(seconds=seconds)

    async def remove_all(self, locations: list[ImageLocation]) -> None:
        for location in locations:
            await self.remove_claimed(location)

    async def scrub(self) -> ScrubReport:
        """One pass: remove every piece of data that is due, scrub_pool_size at a time, in
        batches until none is left. A failed attempt is due again only after its backoff, so
        the pass goes on to the next batch rather than retrying it."""
        now = self._clock()
        scrub_before = now - timedelta(seconds=self.settings.scrub_time)
        stale_before = now - timedelta(seconds=self.settings.scrubber.lease_time)
        slots = asyncio.Semaphore(self.settings.scrub_pool_size)
        outcomes: list[bool] = []
        seen: set[int] = set()

        async def one(location_id: int) -> None:
            async with slots:
                async with self.db.write() as session:
                    location = await DeletionRepository(session).claim(location_id, stale_before)
                if location is not None:
                    with job_context(location.request_id):
                        outcomes.append(await self.remove_claimed(location))

        while True:
            async with self.db.read() as session:
                due = await DeletionRepository(session).due(
                    scrub_before, stale_before, now, SCRUB_BATCH
                )
            batch = [location_id for location_id in due if location_id not in seen]
            if not batch:
                break
            seen.update(batch)
            await asyncio.gather(*(one(location_id) for location_id in batch))
        async with self.db.write() as session:
            completed = await DeletionRepository(session).complete_images()
        return ScrubReport(outcomes.count(True), outcomes.count(False), completed)

    async def restore(self, image_id: str) -> str | None:
        """pending_delete -> active; the reason it cannot be done, or None. A restored image
        keeps its encryption key: its pending key cleanup is voided in the same transaction."""
        async with self.db.write() as session:
            refusal = await DeletionRepository(session).restore(image_id)
            if refusal is None:
                await KeyCleanupRepository(session).void_for_image(image_id)
            return refusal
