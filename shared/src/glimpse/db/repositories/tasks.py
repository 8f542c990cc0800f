"""All queries on tasks. Never commits."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.db.tables import Task, utcnow
from glimpse.domain.listing import SortDir
from glimpse.domain.tasks import TaskStatus

_TASKS = Task.__table__  # type: ignore[attr-defined]


class TaskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def _live(self) -> sa.ColumnElement[bool]:
        """Not deleted and not expired (expired tasks are gone for readers, as in Glance)."""
        return sa.and_(
            _TASKS.c.deleted.is_(False),
            sa.or_(_TASKS.c.expires_at.is_(None), _TASKS.c.expires_at > utcnow()),
        )

    async def add(self, task: Task) -> None:
        self.session.add(task)
        await self.session.flush()

    async def get(self, task_id: str) -> Task | None:
        statement = sa.select(Task).where(_TASKS.c.id == task_id, self._live())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def update_input(self, task_id: str, task_input: dict[str, Any]) -> None:
        """Replace a task's input (the worker's own keys in it: glance-download's)."""
        statement = sa.update(_TASKS).where(_TASKS.c.id == task_id).values(input=task_input)
        await self.session.execute(statement)

    async def page(
        self,
        *,
        owner: str | None,
        all_projects: bool,
        filters: dict[str, str],
        sort_key: str,
        sort_dir: SortDir,
        limit: int,
        marker: Task | None,
    ) -> list[Task]:
        """One page of tasks, newest first by default; the id breaks ties so pages never
        overlap."""
        conditions = [self._live()]
        if not all_projects:
            conditions.append(_TASKS.c.owner == owner)
        conditions += [_TASKS.c[name] == value for name, value in filters.items()]
        column = _TASKS.c[sort_key]
        order = [column, _TASKS.c.id]
        descending = sort_dir == SortDir.DESC
        if marker is not None:
            value = getattr(marker, sort_key)
            after = (
                sa.tuple_(column, _TASKS.c.id) < (value, marker.id)
                if descending
                else sa.tuple_(column, _TASKS.c.id) > (value, marker.id)
            )
            conditions.append(after)
        statement = (
            sa.select(Task)
            .where(*conditions)
            .order_by(*(c.desc() if descending else c.asc() for c in order))
            .limit(limit)
        )
        return list((await self.session.execute(statement)).scalars())

    async def for_image(self, image_id: str) -> list[Task]:
        statement = (
            sa.select(Task)
            .where(_TASKS.c.image_id == image_id, self._live())
            .order_by(_TASKS.c.created_at.desc(), _TASKS.c.id.desc())
        )
        return list((await self.session.execute(statement)).scalars())

    async def claim(self, task_id: str, lease_until: datetime) -> bool:
        """pending -> processing, or take over a processing task whose lease ran out (its
        worker died); False when another worker holds it or it is finished."""
        now = utcnow()
        statement = (
            sa.update(_TASKS)
            .where(
                _TASKS.c.id == task_id,
                sa.or_(
                    _TASKS.c.status == TaskStatus.PENDING,
                    sa.and_(
                        _TASKS.c.status == TaskStatus.PROCESSING,
                        sa.or_(_TASKS.c.lease_until.is_(None), _TASKS.c.lease_until < now),
                    ),
                ),
            )
            .values(status=TaskStatus.PROCESSING, lease_until=lease_until, updated_at=now)
        )
        return bool((await self.session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def heartbeat(self, task_id: str, message: str | None, lease_until: datetime) -> None:
        """Renew a processing task's lease; a None message keeps the last progress message."""
        values: dict[str, Any] = {"lease_until": lease_until, "updated_at": utcnow()}
        if message is not None:
            values["message"] = message
        statement = (
            sa.update(_TASKS)
            .where(_TASKS.c.id == task_id, _TASKS.c.status == TaskStatus.PROCESSING)
            .values(**values)
        )
        await self.session.execute(statement)

    async def finish(
        self,
        task_id: str,
        status: TaskStatus,
        *,
        message: str | None,
        result: dict[str, Any] | None,
        expires_at: datetime,
    ) -> bool:
        """processing (or pending, for a task that cannot start) -> success/failure; a None
        message keeps the last progress message."""
        values: dict[str, Any] = {"message": message} if message is not None else {}
        statement = (
            sa.update(_TASKS)
            .where(
                _TASKS.c.id == task_id,
                _TASKS.c.status.in_([TaskStatus.PENDING, TaskStatus.PROCESSING]),
            )
            .values(
                status=status,
                result=result,
                expires_at=expires_at,
                lease_until=None,
                updated_at=utcnow(),
                **values,
            )
        )
        return bool((await self.session.execute(statement)).rowcount)  # type: ignore[attr-defined]

    async def stalled(self, before: datetime) -> list[str]:
        """Tasks whose message looks lost: pending since before `before` (created or last
        re-sent), or processing with a lease that ran out (the worker died, the message is
        gone)."""
        statement = sa.select(_TASKS.c.id).where(
            _TASKS.c.deleted.is_(False),
            sa.or_(
                sa.and_(
                    _TASKS.c.status == TaskStatus.PENDING,
                    sa.func.coalesce(_TASKS.c.updated_at, _TASKS.c.created_at) < before,
                ),
                sa.and_(
                    _TASKS.c.status == TaskStatus.PROCESSING,
                    _TASKS.c.lease_until < utcnow(),
                ),
            ),
        )
        return list((await self.session.execute(statement)).scalars())

    async def touch_pending(self, task_ids: list[str]) -> None:
        """Record a re-send, so the next pass waits a full period before sending again."""
        if task_ids:
            await self.session.execute(
                sa.update(_TASKS)
                .where(_TASKS.c.id.in_(task_ids), _TASKS.c.status == TaskStatus.PENDING)
                .values(updated_at=utcnow())
            )
