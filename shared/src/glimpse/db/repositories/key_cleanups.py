"""Key cleanups: recording, claiming, rescheduling and voiding them. Never commits.

A row is `pending` until its key is confirmed gone (`done`) or its image is restored (`void`).
Whoever works on one claims it with a conditional UPDATE to `deleting`, stamping updated_at as a
lease, so the API and scrubbers never both call Barbican for it; a claim older than the lease
belongs to a dead process and may be taken over.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import rowcount, table_of
from glimpse.db.tables import Image, ImageKeyCleanup, ImageProperty, utcnow
from glimpse.domain.images import ImageStatus

_IMAGE = table_of(Image)
_PROPS = table_of(ImageProperty)
_ROWS = table_of(ImageKeyCleanup)

PENDING = "pending"
DELETING = "deleting"
DONE = "done"
VOID = "void"


class KeyCleanupRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def properties(self, image_id: str, names: tuple[str, ...]) -> dict[str, str]:
        rows = await self.session.execute(
            sa.select(_PROPS.c.name, _PROPS.c.value).where(
                _PROPS.c.image_id == image_id, _PROPS.c.name.in_(names)
            )
        )
        return {str(row[0]): str(row[1]) for row in rows}

    async def add(self, row: ImageKeyCleanup) -> ImageKeyCleanup:
        self.session.add(row)
        await self.session.flush()
        return row

    async def get(self, cleanup_id: int) -> ImageKeyCleanup | None:
        statement = sa.select(ImageKeyCleanup).where(_ROWS.c.id == cleanup_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def for_image(self, image_id: str) -> list[ImageKeyCleanup]:
        statement = sa.select(ImageKeyCleanup).where(_ROWS.c.image_id == image_id)
        return list((await self.session.execute(statement.order_by(_ROWS.c.id))).scalars())

    def _claimable(self, stale_before: datetime) -> sa.ColumnElement[bool]:
        return sa.or_(
            _ROWS.c.status == PENDING,
            sa.and_(_ROWS.c.status == DELETING, _ROWS.c.updated_at < stale_before),
        )

    async def due(self, now: datetime, stale_before: datetime, limit: int) -> list[int]:
        """Cleanups whose image is really gone (deleted, not pending_delete) and whose next
        attempt is due."""
        statement = (
            sa.select(_ROWS.c.id)
            .join(_IMAGE, _IMAGE.c.id == _ROWS.c.image_id)
            .where(
                self._claimable(stale_before),
                _ROWS.c.next_attempt_at <= now,
                _IMAGE.c.status == ImageStatus.DELETED,
            )
            .order_by(_ROWS.c.next_attempt_at, _ROWS.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def needing_trust(self, now: datetime, limit: int) -> list[int]:
        """Pending cleanups with a still valid user token but no trust yet (Keystone refused
        or was down when the image was deleted)."""
        statement = (
            sa.select(_ROWS.c.id)
            .where(
                _ROWS.c.status == PENDING,
                _ROWS.c.trust_id.is_(None),
                _ROWS.c.user_token.is_not(None),
                _ROWS.c.token_expires_at > now,
            )
            .order_by(_ROWS.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def with_spent_trust(self, limit: int) -> list[int]:
        """Finished or voided cleanups whose trust still exists in Keystone."""
        statement = (
            sa.select(_ROWS.c.id)
            .where(_ROWS.c.status.in_((DONE, VOID)), _ROWS.c.trust_id.is_not(None))
            .order_by(_ROWS.c.id)
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def drop_expired_tokens(self, now: datetime) -> int:
        result = await self.session.execute(
            sa.update(_ROWS)
            .where(_ROWS.c.user_token.is_not(None), _ROWS.c.token_expires_at <= now)
            .values(user_token=None, updated_at=utcnow())
        )
        return rowcount(result)

    async def claim(self, cleanup_id: int, stale_before: datetime) -> ImageKeyCleanup | None:
        result = await self.session.execute(
            sa.update(_ROWS)
            .where(_ROWS.c.id == cleanup_id, self._claimable(stale_before))
            .values(status=DELETING, updated_at=utcnow())
        )
        if rowcount(result) != 1:
            return None
        return await self.get(cleanup_id)

    async def finish(self, cleanup_id: int) -> None:
        await self.session.execute(
            sa.update(_ROWS)
            .where(_ROWS.c.id == cleanup_id, _ROWS.c.status == DELETING)
            .values(
                status=DONE,
                user_token=None,
                token_expires_at=None,
                last_error=None,
                updated_at=utcnow(),
            )
        )

    async def retry_later(self, cleanup_id: int, next_attempt_at: datetime, error: str) -> None:
        await self.session.execute(
            sa.update(_ROWS)
            .where(_ROWS.c.id == cleanup_id, _ROWS.c.status == DELETING)
            .values(
                status=PENDING,
                attempts=_ROWS.c.attempts + 1,
                next_attempt_at=next_attempt_at,
                last_error=error[:255],
                updated_at=utcnow(),
            )
        )

    async def set_trust(self, cleanup_id: int, trust_id: str | None) -> None:
        await self.session.execute(
            sa.update(_ROWS).where(_ROWS.c.id == cleanup_id).values(trust_id=trust_id)
        )

    async def void_for_image(self, image_id: str) -> int:
        """A restored image keeps its key: its pending cleanups never run, and the kept token
        goes now (the trust is deleted by the scrubber's next pass)."""
        result = await self.session.execute(
            sa.update(_ROWS)
            .where(_ROWS.c.image_id == image_id, _ROWS.c.status.in_((PENDING, DELETING)))
            .values(status=VOID, user_token=None, token_expires_at=None, updated_at=utcnow())
        )
        return rowcount(result)
