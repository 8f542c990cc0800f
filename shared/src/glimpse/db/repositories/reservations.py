"""Storage reservations: what images being written will add to their owner's storage
(see StorageReservation). Never commits; the caller's write transaction makes a check and
its reservation one atomic step."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import table_of
from glimpse.db.tables import Image, StorageOwner, StorageReservation, utcnow

_IMAGE = table_of(Image)
_RESERVATIONS = table_of(StorageReservation)
_OWNERS = table_of(StorageOwner)


def owner_key(owner: str | None) -> str:
    """How an image's owner is named in the reservation tables (no owner: "")."""
    return owner or ""


class ReservationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def lock_owner(self, owner: str | None) -> None:
        """Take the owner's row lock (creating its row the first time) for the rest of the
        transaction: every reservation of that owner is checked under it. SQLite has no row
        locks; its write transactions (BEGIN IMMEDIATE) run one at a time instead."""
        key = owner_key(owner)
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await self.session.execute(insert(_OWNERS).values(owner=key).on_conflict_do_nothing())
        await self.session.execute(
            sa.select(_OWNERS.c.owner).where(_OWNERS.c.owner == key).with_for_update()
        )

    async def used(self, owner: str | None, now: datetime, *, besides: str) -> int:
        """Bytes `owner` stores or has reserved, leaving out image `besides`: the sizes of its
        live images and its reservations whose lease still runs."""
        owned = _IMAGE.c.owner.is_(None) if owner is None else _IMAGE.c.owner == owner
        stored = sa.select(sa.func.coalesce(sa.func.sum(_IMAGE.c.size), 0)).where(
            owned, _IMAGE.c.deleted.is_(False), _IMAGE.c.id != besides
        )
        reserved = sa.select(sa.func.coalesce(sa.func.sum(_RESERVATIONS.c.size), 0)).where(
            _RESERVATIONS.c.owner == owner_key(owner),
            _RESERVATIONS.c.lease_until > now,
            _RESERVATIONS.c.image_id != besides,
        )
        total = sa.select(stored.scalar_subquery() + reserved.scalar_subquery())
        return int((await self.session.execute(total)).scalar_one())

    async def recorded_size(self, image_id: str) -> int:
        """The size the image's row records (0 for none, or a deleted image)."""
        statement = sa.select(_IMAGE.c.size).where(
            _IMAGE.c.id == image_id, _IMAGE.c.deleted.is_(False)
        )
        return int((await self.session.execute(statement)).scalar_one_or_none() or 0)

    async def hold(
        self, owner: str | None, image_id: str, size: int, lease_until: datetime
    ) -> None:
        """Set the image's reservation to `size` bytes until `lease_until`."""
        await self.release(image_id)
        now = utcnow()
        await self.session.execute(
            sa.insert(_RESERVATIONS).values(
                image_id=image_id,
                owner=owner_key(owner),
                size=size,
                lease_until=lease_until,
                created_at=now,
                updated_at=now,
            )
        )

    async def renew(self, image_id: str, lease_until: datetime) -> None:
        await self.session.execute(
            sa.update(_RESERVATIONS)
            .where(_RESERVATIONS.c.image_id == image_id)
            .values(lease_until=lease_until, updated_at=utcnow())
        )

    async def release(self, image_id: str) -> None:
        """The image's data is recorded (its size counts now) or given up: nothing reserved."""
        await self.session.execute(
            sa.delete(_RESERVATIONS).where(_RESERVATIONS.c.image_id == image_id)
        )

    async def drop_expired(self, owner: str | None, now: datetime) -> None:
        """Forget reservations of `owner` whose process stopped renewing them."""
        await self.session.execute(
            sa.delete(_RESERVATIONS).where(
                _RESERVATIONS.c.owner == owner_key(owner), _RESERVATIONS.c.lease_until <= now
            )
        )
