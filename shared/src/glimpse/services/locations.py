"""Where an image's data lives: removing it from one store (2.10)."""

from __future__ import annotations

import logging

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.domain import policy
from glimpse.domain.errors import Conflict, Forbidden, NotFound
from glimpse.domain.images import ImageStatus
from glimpse.services.access import authorized_image
from glimpse.stores.base import StoreError
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)


class LocationService:
    def __init__(self, settings: Settings, database: Database, stores: StoreRegistry) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores

    async def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """Remove an active image's data from one store, keeping it in the others."""
        if not self.settings.multistore:
            raise NotFound("Not Found")
        store = self.stores.get(store_id)
        if store is None:
            raise Conflict(f"The selected store {store_id} is not available on this node.")
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(
                repo,
                ctx,
                image_id,
                "get_image_location",
                lock=True,
                missing=NotFound(f"Failed to find image {image_id}"),
            )
            policy.enforce(ctx, "delete_image_location", image)
            if image.status != ImageStatus.ACTIVE:
                raise Conflict(
                    "It's not allowed to remove image data from store if image status is not "
                    "'active'"
                )
            locations = (await repo.record(image)).locations
            if len(locations) == 1:
                raise Forbidden(
                    "Cannot delete image data from the only store containing it. Consider "
                    "deleting the image instead."
                )
            target = next((loc for loc in locations if loc.store_id == store_id), None)
            if target is None:
                raise NotFound(f"Image {image_id} is not stored in store {store_id}.")
            await repo.retire_location(target)
            await repo.touch(image)
        # The location is gone from the image once committed; only then does the data go, so a
        # reader never follows a location whose data was removed first.
        try:
            if not await store.delete_if_present(target.value):
                log.warning("image %s: data at %s was already gone", image_id, target.value)
        except (StoreError, OSError):
            log.exception("image %s: data at %s left behind", image_id, target.value)
