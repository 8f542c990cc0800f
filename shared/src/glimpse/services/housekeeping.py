"""Abandoned uploads, leftovers in the reserved stores, and half-written uploads in the file
and s3 stores.

- An image left `saving` by an upload whose API node died (or could not record the upload's
  failure) goes back to queued once its upload lease has run out (see upload_lease); an upload
  still in progress keeps renewing its lease and is never taken back.
- Staged data (`os_glance_staging_store`, files or the objects of an s3 staging store) and
  import work files (`os_glance_tasks_store`) are named after their image. They are removed
  once the image is gone, deleted, or neither uploading/importing nor locked by an import (a
  copy-image keeps its image active); names that are not image ids are left alone.
- `.partial-*` files are uploads that never finished (their process died). Live uploads keep
  writing theirs, so only files untouched for `lease_time` are removed, and never those of an
  upload that still holds its lease (a client may pause for longer than that).
- Pending S3 multipart uploads are uploads whose process died mid-way (a failed or cancelled
  one aborts its own). Those started over `lease_time` ago are aborted, unless their key names
  an image still being written (`saving`, uploading/importing, or locked by an import): a huge
  image may take longer than that. Keys that are not image ids are left alone.

A reserved-store file touched within the last QUIET_SECONDS is never removed: its image may
have just moved into uploading, after the status was read. A `.partial-*` file needs no such
margin: its writer touches it with every write, so `lease_time` untouched is the whole test.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Final

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.stores.base import StoredEntry, StoreError
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import TEMP_PREFIX, FilesystemStore
from glimpse.stores.registry import StoreRegistry
from glimpse.stores.s3_listing import BucketListing, PendingUpload

log = logging.getLogger(__name__)

QUIET_SECONDS: Final = 60
_UUID_LENGTH: Final = 36


def image_id_of(name: str) -> str | None:
    """The image id a reserved-store file is named after (`<id>` or `<id>.<suffix>`)."""
    candidate = name[:_UUID_LENGTH]
    if len(name) > _UUID_LENGTH and name[_UUID_LENGTH] not in ".-_":
        return None
    try:
        return str(uuid.UUID(candidate)) if len(candidate) == _UUID_LENGTH else None
    except ValueError:
        return None


class Housekeeping:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: StoreRegistry,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self._clock = clock  # seconds since the epoch

    async def run(self) -> int:
        """One sweep; returns how many files were removed and uploads aborted. Abandoned
        uploads are taken back first, so the same sweep removes what they left."""
        await self.reclaim_uploads()
        removed = 0
        for store in (self.stores.staging, self.stores.tasks):
            removed += await self._sweep_reserved(store)
        # An s3 staging store's uploads too: an API node may die mid-stage.
        removed += await self._sweep_uploads(self.stores.staging)
        for store_id in self.stores.ids():
            user_store = self.stores.get(store_id)
            if user_store is not None:
                removed += await self._sweep_partials(user_store)
                removed += await self._sweep_uploads(user_store)
        return removed

    def _utcnow(self) -> datetime:
        """The clock as the database's columns hold time (naive UTC, whole seconds)."""
        return datetime.fromtimestamp(self._clock(), UTC).replace(tzinfo=None, microsecond=0)

    async def reclaim_uploads(self) -> list[str]:
        """saving -> queued for the images whose upload lease ran out; their ids."""
        now = self._utcnow()
        unleased_before = now - timedelta(seconds=self.settings.scrubber.lease_time)
        async with self.db.write() as session:
            reclaimed = await ImageRepository(session).reclaim_abandoned_uploads(
                now, unleased_before
            )
        for image_id in reclaimed:
            log.warning(
                "image %s: its upload was abandoned (the lease ran out); back to queued", image_id
            )
        return reclaimed

    async def _entries(
        self, store: CheckedStore, untouched_for: float, *, s3: bool = False
    ) -> list[StoredEntry]:
        """The entries of a file store (or, with `s3`, an s3 store) untouched for
        `untouched_for` seconds."""
        driver = store.driver
        if not (isinstance(driver, FilesystemStore) or (s3 and isinstance(driver, BucketListing))):
            return []
        since = self._clock() - untouched_for
        try:
            entries = await driver.entries()
        except StoreError as exc:
            # An unreachable store must not stop the sweep of the others; the next pass retries.
            log.warning("could not list %s: %s", store.name, exc)
            return []
        return [entry for entry in entries if entry.modified < since]

    async def _sweep_reserved(self, store: CheckedStore) -> int:
        named = {}
        # An s3 store is listed only here: a staging bucket holds staged data alone.
        found = await self._entries(store, QUIET_SECONDS, s3=True)
        for entry in found:
            image_id = image_id_of(entry.name)
            if image_id is not None:
                named[entry.location] = image_id
        if not named:
            return 0
        async with self.db.read() as session:
            wanted = await ImageRepository(session).with_data_in_flight(set(named.values()))
        removed = 0
        for location, image_id in named.items():
            if image_id in wanted:
                continue
            if await store.delete_if_present(location):
                log.info("removed leftover %s of image %s from %s", location, image_id, store.name)
                removed += 1
        return removed

    async def _sweep_partials(self, store: CheckedStore) -> int:
        untouched = [
            entry
            for entry in await self._entries(store, self.settings.scrubber.lease_time)
            if entry.name.startswith(TEMP_PREFIX)
        ]
        if not untouched:
            return 0
        writers = {
            entry.location: image_id_of(entry.name.removeprefix(TEMP_PREFIX)) for entry in untouched
        }
        async with self.db.read() as session:
            uploading = await ImageRepository(session).uploads_in_progress(
                {image_id for image_id in writers.values() if image_id is not None},
                self._utcnow(),
            )
        removed = 0
        for entry in untouched:
            if writers[entry.location] in uploading:
                continue  # a paused upload that still holds its lease
            if await store.delete_if_present(entry.location):
                log.info("removed abandoned upload %s from %s", entry.location, store.name)
                removed += 1
        return removed

    async def _sweep_uploads(self, store: CheckedStore) -> int:
        driver = store.driver
        if not isinstance(driver, BucketListing):
            return 0
        since = self._clock() - self.settings.scrubber.lease_time
        try:
            pending = await driver.pending_uploads()
        except StoreError as exc:
            # An unreachable store must not stop the sweep of the others; the next pass retries.
            log.warning("could not list pending uploads of %s: %s", store.name, exc)
            return 0
        named: dict[PendingUpload, str] = {}
        for upload in pending:
            image_id = image_id_of(upload.key)
            if image_id is not None and upload.initiated < since:
                named[upload] = image_id
        if not named:
            return 0
        async with self.db.read() as session:
            # `saving` too: a direct upload writes straight to the store, not to staging.
            repo = ImageRepository(session)
            wanted = await repo.with_data_in_flight(set(named.values()), saving=True)
        aborted = 0
        for upload, image_id in named.items():
            if image_id in wanted:
                continue
            try:
                await driver.abort_upload(upload)
            except StoreError as exc:
                log.warning(
                    "could not abort upload %s of %s: %s", upload.upload_id, store.name, exc
                )
                continue
            log.info(
                "aborted abandoned upload %s (id %s) of image %s in %s",
                upload.key,
                upload.upload_id,
                image_id,
                store.name,
            )
            aborted += 1
        return aborted
