"""Leftovers in the reserved stores, and half-written uploads in the file stores.

- Staged data (`os_glance_staging_store`) and import work files (`os_glance_tasks_store`) are
  named after their image. They are removed once the image is gone, deleted, or neither
  uploading/importing nor locked by an import (a copy-image keeps its image active); names
  that are not image ids are left alone.
- `.partial-*` files are uploads that never finished (their process died). Live uploads keep
  writing theirs, so only files untouched for `lease_time` are removed.

A reserved-store file touched within the last QUIET_SECONDS is never removed: its image may
have just moved into uploading, after the status was read. A `.partial-*` file needs no such
margin: its writer touches it with every write, so `lease_time` untouched is the whole test.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Final

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.stores.checked import CheckedStore
from glimpse.stores.filesystem import TEMP_PREFIX, FilesystemStore, StoredEntry
from glimpse.stores.registry import StoreRegistry

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
    def __init__(self, settings: Settings, database: Database, stores: StoreRegistry) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores

    async def run(self) -> int:
        """One sweep; returns how many files were removed."""
        removed = 0
        for store in (self.stores.staging, self.stores.tasks):
            removed += await self._sweep_reserved(store)
        for store_id in self.stores.ids():
            user_store = self.stores.get(store_id)
            if user_store is not None:
                removed += await self._sweep_partials(user_store)
        return removed

    async def _entries(self, store: CheckedStore, untouched_for: float) -> list[StoredEntry]:
        driver = store.driver
        if not isinstance(driver, FilesystemStore):
            return []
        since = time.time() - untouched_for
        return [entry for entry in await driver.entries() if entry.modified < since]

    async def _sweep_reserved(self, store: CheckedStore) -> int:
        named = {}
        for entry in await self._entries(store, QUIET_SECONDS):
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
        removed = 0
        for entry in await self._entries(store, self.settings.scrubber.lease_time):
            abandoned = entry.name.startswith(TEMP_PREFIX)
            if abandoned and await store.delete_if_present(entry.location):
                log.info("removed abandoned upload %s from %s", entry.location, store.name)
                removed += 1
        return removed
