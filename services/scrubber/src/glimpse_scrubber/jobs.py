"""The scrubber's jobs, run in order on every pass."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Final

import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database

Job = Callable[[Database, Settings], Awaitable[None]]


async def check_database(database: Database, _settings: Settings) -> None:
    """Fail the pass when the database cannot be reached (CRITICAL, per the Pike semantics)."""
    async with database.read() as session:
        await session.execute(sa.text("SELECT 1"))


# Delayed delete, key cleanup and staging cleanup join this list as they are built.
JOBS: Final[tuple[Job, ...]] = (check_database,)
