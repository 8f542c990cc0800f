"""Whether this API node takes traffic: oslo.middleware's healthcheck with its disable_by_file
backend, as Glance's paste pipeline serves it. Cheap by design (one stat, no database): a load
balancer asks every few seconds. Readiness, asked less often, also reaches the database and
the broker."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Final

import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.jobs.publisher import JobPublisher

log = logging.getLogger(__name__)

OK: Final = "OK"
DISABLED_BY_FILE: Final = "DISABLED BY FILE"
SHUTTING_DOWN: Final = "SHUTTING DOWN"
UNREACHABLE: Final = "UNREACHABLE"
READY_CACHE_SECONDS: Final = 1.0
CHECK_SECONDS: Final = 3.0  # a database or broker slower than this is not ready

# Set once in this process when it was asked to stop (SIGTERM): from then on it drains.
_draining = threading.Event()


def start_draining() -> None:
    """This process stops soon: its health check fails from now on, its responses close their
    connections, so a balancer sends the next requests elsewhere."""
    _draining.set()


def draining() -> bool:
    return _draining.is_set()


@dataclass(frozen=True, slots=True)
class Health:
    available: bool
    reason: str


class HealthService:
    def __init__(self, settings: Settings) -> None:
        self.disable_file = settings.healthcheck.disable_by_file_path

    def check(self) -> Health:
        """Unavailable while this process drains before it stops, and while `[healthcheck]
        disable_by_file_path` exists (a node an operator drains)."""
        if draining():
            return Health(available=False, reason=SHUTTING_DOWN)
        if self.disable_file is not None and self.disable_file.exists():
            return Health(available=False, reason=DISABLED_BY_FILE)
        return Health(available=True, reason=OK)


@dataclass(frozen=True, slots=True)
class Readiness:
    ready: bool
    checks: dict[str, str]  # what was checked -> OK, or why not (never an error's text)


class ReadinessService:
    """Whether this node can do its work now: it is healthy (not draining, not disabled), the
    database answers and the broker accepts a connection. Each process asks them at most once
    per READY_CACHE_SECONDS, however often it is asked: the endpoint is public."""

    def __init__(self, health: HealthService, database: Database, publisher: JobPublisher) -> None:
        self.health = health
        self.database = database
        self.publisher = publisher
        self._last: tuple[float, dict[str, str]] | None = None
        self._lock = asyncio.Lock()

    async def check(self) -> Readiness:
        checks = {"node": self.health.check().reason}
        async with self._lock:
            now = time.monotonic()
            if self._last is None or now - self._last[0] >= READY_CACHE_SECONDS:
                database, broker = await asyncio.gather(self._database(), self._broker())
                self._last = (time.monotonic(), {"database": database, "broker": broker})
            checks.update(self._last[1])
        return Readiness(ready=all(v == OK for v in checks.values()), checks=checks)

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(CHECK_SECONDS), self.database.read() as session:
                await session.execute(sa.text("SELECT 1"))
        except Exception:
            log.warning("readiness: the database does not answer", exc_info=True)
            return UNREACHABLE
        return OK

    async def _broker(self) -> str:
        try:
            async with asyncio.timeout(CHECK_SECONDS):
                await self.publisher.reachable()
        except Exception:
            log.warning("readiness: the broker does not answer", exc_info=True)
            return UNREACHABLE
        return OK
