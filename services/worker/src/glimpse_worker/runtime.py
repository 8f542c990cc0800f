"""One event loop, one Database and one StoreRegistry per worker process.

Celery cannot run coroutines, so each task is a sync shell that calls `run(...)` on this
process's loop. Everything is built in the pool process (`worker_process_init`), never in the
parent before the fork: connections and loops do not survive a fork.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.stores.registry import StoreRegistry

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class WorkerContext:
    """What a pipeline needs; tests build one around their own settings and database."""

    settings: Settings
    database: Database
    stores: StoreRegistry

    @classmethod
    def build(cls, settings: Settings) -> WorkerContext:
        return cls(
            settings, Database.from_settings(settings), StoreRegistry.from_settings(settings)
        )

    async def aclose(self) -> None:
        await self.stores.aclose()
        await self.database.dispose()


class _Process:
    settings: Settings | None = None
    loop: asyncio.AbstractEventLoop | None = None
    context: WorkerContext | None = None


_process = _Process()


def configure(settings: Settings) -> None:
    """Remember the settings; the runtime itself is built in each pool process."""
    _process.settings = settings


def configured_settings() -> Settings | None:
    return _process.settings


def start() -> None:
    """Build this process's loop and context (the `worker_process_init` handler)."""
    if _process.settings is None:
        msg = "runtime.configure(settings) must run before the worker starts"
        raise RuntimeError(msg)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    _process.loop = loop
    _process.context = WorkerContext.build(_process.settings)


def stop() -> None:
    """Close what start() opened (the `worker_process_shutdown` handler)."""
    loop, context = _process.loop, _process.context
    if loop is None or context is None:
        return
    loop.run_until_complete(context.aclose())
    loop.close()
    _process.loop = _process.context = None


def context() -> WorkerContext:
    if _process.context is None:
        start()  # a solo or threads pool has no process init
    assert _process.context is not None  # noqa: S101 -- start() sets it
    return _process.context


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    context()
    assert _process.loop is not None  # noqa: S101 -- context() started the loop
    return _process.loop.run_until_complete(coroutine)
