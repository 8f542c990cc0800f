"""`glimpse-scrubber --check`: the health check of the daemon running beside it.

Healthy when the daemon completed a pass lately (it touches `[scrubber] heartbeat_file` after
each one, and a pass starts by reaching the database) and the database answers now. Imports
only the settings and the database layer: it runs every few seconds.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Final

import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database

DATABASE_TIMEOUT: Final = 10.0  # seconds the check gives the database
PASS_ALLOWANCE: Final = 60.0  # seconds a pass may take on top of two wakeup intervals


def heartbeat_age_limit(settings: Settings) -> float:
    return 2 * settings.scrubber.wakeup_time + PASS_ALLOWANCE


def beat(path: Path) -> None:
    """Record a complete pass (the file's modification time); raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def _fail(reason: str) -> int:
    print(f"glimpse-scrubber: {reason}", file=sys.stderr)  # noqa: T201 -- the check's answer
    return 1


async def _database_answers(settings: Settings) -> None:
    database = Database.from_settings(settings)
    try:
        async with database.read() as session:
            await session.execute(sa.text("SELECT 1"))
    finally:
        await database.dispose()


async def check(settings: Settings) -> int:
    """0 if healthy, else 1 with the reason on stderr."""
    path = settings.scrubber.heartbeat_file
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return _fail(f"no pass completed yet ({path} does not exist)")
    limit = heartbeat_age_limit(settings)
    if age > limit:
        return _fail(f"the last complete pass ended {age:.0f}s ago (limit {limit:.0f}s)")
    try:
        await asyncio.wait_for(_database_answers(settings), timeout=DATABASE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 -- whatever stops it, the database is unreachable
        return _fail(f"the database does not answer: {exc!r}")
    return 0
