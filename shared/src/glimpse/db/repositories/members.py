"""All queries on image members. Never commits."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.core import table_of
from glimpse.db.tables import ImageMember, utcnow
from glimpse.domain.members import MemberStatus

_MEMBERS = table_of(ImageMember)


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def status_of(self, image_id: str, project_id: str | None) -> str | None:
        """The live membership status of `project_id` on the image, None if not a member."""
        if project_id is None:
            return None
        statement = sa.select(_MEMBERS.c.status).where(
            _MEMBERS.c.image_id == image_id,
            _MEMBERS.c.member == project_id,
            _MEMBERS.c.deleted.is_(False),
        )
        status: str | None = (await self.session.execute(statement)).scalar_one_or_none()
        return status

    async def statuses_of(self, image_ids: list[str], project_id: str | None) -> dict[str, str]:
        """image id -> `project_id`'s live membership status, for the images it is a member of."""
        if project_id is None or not image_ids:
            return {}
        statement = sa.select(_MEMBERS.c.image_id, _MEMBERS.c.status).where(
            _MEMBERS.c.image_id.in_(image_ids),
            _MEMBERS.c.member == project_id,
            _MEMBERS.c.deleted.is_(False),
        )
        return {str(row[0]): str(row[1]) for row in await self.session.execute(statement)}

    async def get(self, image_id: str, member: str, *, lock: bool = False) -> ImageMember | None:
        statement = sa.select(ImageMember).where(
            _MEMBERS.c.image_id == image_id,
            _MEMBERS.c.member == member,
            _MEMBERS.c.deleted.is_(False),
        )
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_for(self, image_id: str, only: str | None = None) -> list[ImageMember]:
        """Live members of the image, oldest first; `only` narrows to one project."""
        statement = sa.select(ImageMember).where(
            _MEMBERS.c.image_id == image_id, _MEMBERS.c.deleted.is_(False)
        )
        if only is not None:
            statement = statement.where(_MEMBERS.c.member == only)
        statement = statement.order_by(_MEMBERS.c.created_at, _MEMBERS.c.id)
        return list((await self.session.execute(statement)).scalars())

    async def count(self, image_id: str) -> int:
        statement = (
            sa.select(sa.func.count())
            .select_from(_MEMBERS)
            .where(_MEMBERS.c.image_id == image_id, _MEMBERS.c.deleted.is_(False))
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def add(self, image_id: str, member: str) -> ImageMember:
        """A pending membership; a soft-deleted row for the same project is brought back."""
        now = utcnow()
        statement = sa.select(ImageMember).where(
            _MEMBERS.c.image_id == image_id, _MEMBERS.c.member == member
        )
        row = (await self.session.execute(statement)).scalar_one_or_none()
        if row is None:
            row = ImageMember(image_id=image_id, member=member, created_at=now)
            self.session.add(row)
        row.status = MemberStatus.PENDING
        row.created_at = now
        row.updated_at = now
        row.deleted = False
        row.deleted_at = None
        await self.session.flush()
        return row

    async def set_status(self, row: ImageMember, status: MemberStatus) -> None:
        row.status = status
        row.updated_at = utcnow()
        await self.session.flush()

    async def remove(self, row: ImageMember) -> None:
        now = utcnow()
        row.deleted = True
        row.deleted_at = now
        row.updated_at = now
        await self.session.flush()

    async def remove_all(self, image_id: str) -> None:
        """Soft-delete every membership of an image that is being deleted."""
        now = utcnow()
        await self.session.execute(
            sa.update(_MEMBERS)
            .where(_MEMBERS.c.image_id == image_id, _MEMBERS.c.deleted.is_(False))
            .values(deleted=True, deleted_at=now, updated_at=now)
        )
