"""Every write of an image's status, each checked against the transition table. Never commits.

The conditional writes are ORM-enabled updates, so an image already loaded in the session sees
its new values (an API handler answers with the image it just changed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import rowcount, table_of
from glimpse.db.tables import Image, ImageLocation, ImageTag, utcnow
from glimpse.domain.images import ImageData, ImageStatus, LocationStatus, transition

_IMAGE = table_of(Image)
_LOCS = table_of(ImageLocation)
_TAGS = table_of(ImageTag)


class ImageStatusWrites:
    """The images repository's status writes (a mixin: it shares the repository's session)."""

    session: AsyncSession

    async def _update_live(
        self,
        image_id: str,
        status: ImageStatus,
        values: dict[str, Any],
        *conditions: sa.ColumnElement[bool],
    ) -> bool:
        """Write `values` to a live image only while it is still `status`; True if it was."""
        statement = (
            sa.update(Image)
            .where(
                _IMAGE.c.id == image_id,
                _IMAGE.c.status == status,
                _IMAGE.c.deleted.is_(False),
                *conditions,
            )
            .values(updated_at=utcnow(), **values)
            .execution_options(synchronize_session="fetch")
        )
        result = await self.session.execute(statement)
        return bool(rowcount(result))

    async def claim_status(
        self,
        image_id: str,
        expected: ImageStatus,
        target: ImageStatus,
        data: ImageData | None = None,
    ) -> bool:
        """Move a live image from `expected` to `target` (recording `data` with it) only if it
        is still `expected`; InvalidTransition if the table does not allow the move."""
        transition(expected, target)
        return await self._update_live(image_id, expected, {**(data or {}), "status": target})

    async def activate(
        self,
        image_id: str,
        expected: ImageStatus,
        data: ImageData,
        *,
        upload_id: str | None = None,
    ) -> bool:
        """`expected` -> active with what is known of the data; with `upload_id`, only for
        that upload (an upload whose image was taken back, its lease run out, and claimed again
        by another upload activates nothing)."""
        if upload_id is None:
            return await self.claim_status(image_id, expected, ImageStatus.ACTIVE, data)
        return await self._finish_upload(image_id, upload_id, ImageStatus.ACTIVE, data)

    async def record_data(self, image_id: str, status: ImageStatus, data: ImageData) -> bool:
        """Record what is learned about a live image's data while it stays `status` (no status
        change: a staged size, or the hashes of an image already active)."""
        return await self._update_live(image_id, status, dict(data))

    async def claim_upload(self, image_id: str, upload_id: str, lease_until: datetime) -> bool:
        """queued -> saving for the upload `upload_id`, presumed alive until `lease_until`."""
        transition(ImageStatus.QUEUED, ImageStatus.SAVING)
        values = {
            "status": ImageStatus.SAVING,
            "upload_id": upload_id,
            "upload_lease_until": lease_until,
        }
        return await self._update_live(image_id, ImageStatus.QUEUED, values)

    async def release_upload(self, image_id: str, upload_id: str) -> bool:
        """saving -> queued after the upload `upload_id` failed (if the image is still its)."""
        return await self._finish_upload(image_id, upload_id, ImageStatus.QUEUED, {})

    async def _finish_upload(
        self, image_id: str, upload_id: str, target: ImageStatus, data: ImageData
    ) -> bool:
        transition(ImageStatus.SAVING, target)
        values = {**data, "status": target, "upload_id": None, "upload_lease_until": None}
        return await self._update_live(
            image_id, ImageStatus.SAVING, values, _IMAGE.c.upload_id == upload_id
        )

    async def renew_upload(self, image_id: str, upload_id: str, lease_until: datetime) -> bool:
        """Extend an upload's lease; False if the image is no longer this upload's."""
        statement = (
            sa.update(_IMAGE)
            .where(
                _IMAGE.c.id == image_id,
                _IMAGE.c.status == ImageStatus.SAVING,
                _IMAGE.c.upload_id == upload_id,
            )
            .values(upload_lease_until=lease_until)
        )
        result = await self.session.execute(statement)
        return bool(rowcount(result))

    async def reclaim_abandoned_uploads(
        self, now: datetime, unleased_before: datetime
    ) -> list[str]:
        """saving -> queued for the images whose upload's lease ran out (its API node died,
        or could not record the failure). A saving image without a lease (claimed by an
        older release) counts as abandoned once not updated since `unleased_before`."""
        transition(ImageStatus.SAVING, ImageStatus.QUEUED)
        abandoned = sa.or_(
            _IMAGE.c.upload_lease_until < now,
            sa.and_(_IMAGE.c.upload_lease_until.is_(None), _IMAGE.c.updated_at < unleased_before),
        )
        statement = (
            sa.update(_IMAGE)
            .where(_IMAGE.c.status == ImageStatus.SAVING, _IMAGE.c.deleted.is_(False), abandoned)
            .values(
                status=ImageStatus.QUEUED, updated_at=now, upload_id=None, upload_lease_until=None
            )
            .returning(_IMAGE.c.id)
        )
        return list((await self.session.execute(statement)).scalars())

    async def mark_deleted(
        self, image: Image, *, delayed: bool, request_id: str | None
    ) -> list[ImageLocation]:
        """Soft-delete an image. With `delayed`, its data waits for the scrubber
        (pending_delete); otherwise the caller claims the locations (deleting) and must remove
        their data once this commits. Returns the locations now pending or claimed, marked
        with the deleting request's id."""
        now = utcnow()
        target = ImageStatus.PENDING_DELETE if delayed else ImageStatus.DELETED
        image.status = transition(ImageStatus(image.status), target)
        image.deleted = True
        image.deleted_at = now
        image.updated_at = now
        locations = list(
            (
                await self.session.execute(
                    sa.select(ImageLocation).where(
                        _LOCS.c.image_id == image.id, _LOCS.c.status == LocationStatus.ACTIVE
                    )
                )
            ).scalars()
        )
        for location in locations:
            location.status = LocationStatus.PENDING_DELETE if delayed else LocationStatus.DELETING
            location.request_id = request_id
            location.updated_at = now
        if not delayed:
            # A delayed delete may still be restored, tags and all.
            await self.session.execute(sa.delete(_TAGS).where(_TAGS.c.image_id == image.id))
        await self.session.flush()
        return locations
