"""What a project uses of each Keystone unified limit, counted as Glance counts it, plus the
reservations of data in flight (StorageReservation), so writers checked one after another under
the owner's lock (ReservationRepository.lock_owner) see each other's data before it lands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import table_of
from glimpse.db.repositories.reservations import owner_key
from glimpse.db.tables import Image, ImageProperty, StorageReservation
from glimpse.domain.images import ImageStatus

_IMAGE = table_of(Image)
_PROPS = table_of(ImageProperty)
_RESERVATIONS = table_of(StorageReservation)

_UPLOADING = (ImageStatus.SAVING, ImageStatus.UPLOADING, ImageStatus.IMPORTING)
_STAGING = (ImageStatus.UPLOADING, ImageStatus.IMPORTING)
_GONE = (ImageStatus.KILLED, ImageStatus.DELETED, ImageStatus.PENDING_DELETE)
COPYING_PROPERTY = "os_glance_importing_to_stores"


@dataclass(frozen=True, slots=True)
class LimitUsage:
    """Bytes stored and staged (with reservations), images kept, images being written."""

    stored_bytes: int
    staged_bytes: int
    image_count: int
    uploading_count: int


class LimitUsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def usage(
        self, owner: str | None, now: datetime, *, besides: str | None = None
    ) -> LimitUsage:
        """The owner's usage; the data of image `besides` (the one being checked, whose size
        is the check's delta) is left out, though the image is counted."""
        owned = _IMAGE.c.owner.is_(None) if owner is None else _IMAGE.c.owner == owner
        live = sa.and_(owned, _IMAGE.c.deleted.is_(False))
        # An image copying to more stores (copy-image) stages its data and counts as uploading.
        copying = (
            sa.select(_PROPS.c.image_id)
            .where(_PROPS.c.name == COPYING_PROPERTY, _PROPS.c.value != "")
            .scalar_subquery()
        )
        copy_status = sa.and_(
            _IMAGE.c.id.in_(copying), _IMAGE.c.status.not_in([*_UPLOADING, *_GONE])
        )
        staging = sa.or_(_IMAGE.c.status.in_(_STAGING), copy_status)
        uploading = sa.or_(_IMAGE.c.status.in_(_UPLOADING), copy_status)
        size = sa.case((_IMAGE.c.id == besides, 0), else_=sa.func.coalesce(_IMAGE.c.size, 0))
        images = sa.select(
            sa.func.coalesce(sa.func.sum(size), 0),
            sa.func.coalesce(sa.func.sum(sa.case((staging, size), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((_IMAGE.c.status.not_in(_GONE), 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(sa.case((uploading, 1), else_=0)), 0),
        ).where(live)
        stored, staged, count, in_flight = (await self.session.execute(images)).one()
        reserved = (
            sa.select(
                sa.func.coalesce(sa.func.sum(_RESERVATIONS.c.size), 0),
                sa.func.coalesce(
                    sa.func.sum(
                        sa.case((_IMAGE.c.status.in_(_STAGING), _RESERVATIONS.c.size), else_=0)
                    ),
                    0,
                ),
            )
            .select_from(_RESERVATIONS.outerjoin(_IMAGE, _IMAGE.c.id == _RESERVATIONS.c.image_id))
            .where(
                _RESERVATIONS.c.owner == owner_key(owner),
                _RESERVATIONS.c.lease_until > now,
                _RESERVATIONS.c.image_id != (besides or ""),
            )
        )
        held, held_staging = (await self.session.execute(reserved)).one()
        return LimitUsage(
            int(stored) + int(held), int(staged) + int(held_staging), int(count), int(in_flight)
        )
