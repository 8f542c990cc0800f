"""Data waiting to be removed from stores: claiming it, finishing it, restoring it.

A location whose data must go is `pending_delete`. Whoever removes it first claims it with a
conditional UPDATE to `deleting` (stamping updated_at as a lease), so two scrubbers, or the API
and a scrubber, never both work on it; a claim older than the lease belongs to a dead process
and may be taken over. A failed attempt gives the location back with a backoff
(`next_attempt_at`), and the due ones are taken in order of their next attempt, so data that
cannot be deleted (a store gone for good, an http location) never holds up the rest. Never
commits.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import rowcount, table_of
from glimpse.db.tables import Image, ImageLocation, utcnow
from glimpse.domain.images import ImageStatus, LocationStatus, transition

_IMAGE = table_of(Image)
_LOCS = table_of(ImageLocation)


class DeletionRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def due(
        self, scrub_before: datetime, stale_before: datetime, now: datetime, limit: int
    ) -> list[int]:
        """Ids of locations whose data may be removed now, the longest waiting first: every
        pending or stale-claimed location whose backoff has passed, except those of
        pending_delete images still inside scrub_time."""
        kept = sa.and_(
            _IMAGE.c.status == ImageStatus.PENDING_DELETE, _IMAGE.c.deleted_at > scrub_before
        )
        location_due = sa.or_(
            _LOCS.c.status == LocationStatus.PENDING_DELETE,
            sa.and_(_LOCS.c.status == LocationStatus.DELETING, _LOCS.c.updated_at < stale_before),
        )
        ready = sa.or_(_LOCS.c.next_attempt_at.is_(None), _LOCS.c.next_attempt_at <= now)
        # Never tried: since it became pending (updated_at); tried: since its backoff ended.
        waiting_since = sa.func.coalesce(
            _LOCS.c.next_attempt_at, _LOCS.c.updated_at, _LOCS.c.created_at
        )
        statement = (
            sa.select(_LOCS.c.id)
            .join(_IMAGE, _IMAGE.c.id == _LOCS.c.image_id)
            .where(location_due, ready, ~kept)
            .order_by(waiting_since, _LOCS.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def claim(self, location_id: int, stale_before: datetime) -> ImageLocation | None:
        """Take one location for deletion; None if someone else holds it or it is done."""
        claimable = sa.or_(
            _LOCS.c.status == LocationStatus.PENDING_DELETE,
            sa.and_(_LOCS.c.status == LocationStatus.DELETING, _LOCS.c.updated_at < stale_before),
        )
        result = await self.session.execute(
            sa.update(_LOCS)
            .where(_LOCS.c.id == location_id, claimable)
            .values(status=LocationStatus.DELETING, updated_at=utcnow())
        )
        if rowcount(result) != 1:
            return None
        statement = sa.select(ImageLocation).where(_LOCS.c.id == location_id)
        return (await self.session.execute(statement)).scalar_one()

    async def finish(self, location_id: int) -> None:
        await self.session.execute(
            sa.update(_LOCS)
            .where(_LOCS.c.id == location_id, _LOCS.c.status == LocationStatus.DELETING)
            .values(status=LocationStatus.DELETED, updated_at=utcnow())
        )

    async def release(self, location_id: int, retry_at: datetime) -> None:
        """Give a claim back after a failed attempt; it is due again at `retry_at`."""
        await self.session.execute(
            sa.update(_LOCS)
            .where(_LOCS.c.id == location_id, _LOCS.c.status == LocationStatus.DELETING)
            .values(
                status=LocationStatus.PENDING_DELETE,
                updated_at=utcnow(),
                attempts=_LOCS.c.attempts + 1,
                next_attempt_at=retry_at,
            )
        )

    async def complete_images(self) -> int:
        """pending_delete images whose data is all gone become deleted."""
        transition(ImageStatus.PENDING_DELETE, ImageStatus.DELETED)
        remaining = (
            sa.select(_LOCS.c.id)
            .where(_LOCS.c.image_id == _IMAGE.c.id, _LOCS.c.status != LocationStatus.DELETED)
            .exists()
        )
        result = await self.session.execute(
            sa.update(_IMAGE)
            .where(_IMAGE.c.status == ImageStatus.PENDING_DELETE, ~remaining)
            .values(status=ImageStatus.DELETED, updated_at=utcnow())
        )
        return rowcount(result)

    async def restore(self, image_id: str) -> str | None:
        """Bring a pending_delete image back to active with its locations; return why not, or
        None when restored. Refused once any of its data is claimed or gone."""
        image = (
            await self.session.execute(
                sa.select(Image).where(_IMAGE.c.id == image_id).with_for_update()
            )
        ).scalar_one_or_none()
        if image is None:
            return f"image {image_id} does not exist"
        if image.status != ImageStatus.PENDING_DELETE:
            return f"image {image_id} is {image.status}, not pending_delete"
        rows = await self.session.execute(
            sa.select(_LOCS.c.status, _LOCS.c.updated_at)
            .where(_LOCS.c.image_id == image_id)
            .with_for_update()
        )
        deleted_at = image.deleted_at
        for status, updated_at in rows:
            scrubbed = status == LocationStatus.DELETED and (
                deleted_at is None or updated_at is None or updated_at >= deleted_at
            )
            if status == LocationStatus.DELETING or scrubbed:
                return f"image {image_id} has data that is already being scrubbed"
        await self.session.execute(
            sa.update(_LOCS)
            .where(_LOCS.c.image_id == image_id, _LOCS.c.status == LocationStatus.PENDING_DELETE)
            .values(
                status=LocationStatus.ACTIVE, updated_at=utcnow(), attempts=0, next_attempt_at=None
            )
        )
        image.status = transition(ImageStatus.PENDING_DELETE, ImageStatus.ACTIVE)
        image.deleted = False
        image.deleted_at = None
        image.updated_at = utcnow()
        await self.session.flush()
        return None
