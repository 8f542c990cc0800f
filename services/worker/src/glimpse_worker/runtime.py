"""One event loop, one Database and one StoreRegistry per thread that runs jobs: the pool
process's main thread (`[celery] worker_pool = prefork`) or each of the pool's threads
(`threads`).

Celery cannot run coroutines, so each task is a sync shell that calls `run(...)` on its
thread's loop. Everything is built where the jobs run (a pool process's `worker_process_init`,
a pool thread's first job), never in the parent before the fork: connections and loops do not
survive a fork, and a loop runs one coroutine at a time.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from glimpse.config import Settings
from glimpse.db.engine import Database, import_driver
from glimpse.stores.registry import StoreRegistry, load_drivers

T = TypeVar("T")

log = logging.getLogger(__name__)

# Seconds a new job process may spend opening its database connections: well within the time
# Celery gives it to report ready (worker_proc_alive_timeout, 4 s by default).
WARM_SECONDS: Final = 1.0


@dataclass(frozen=True, slots=True)
class WorkerRuntime:
    """What a pipeline needs; tests build one around their own settings and database."""

    settings: Settings
    database: Database
    stores: StoreRegistry

    @classmethod
    def build(cls, settings: Settings) -> WorkerRuntime:
        return cls(
            settings, Database.from_settings(settings), StoreRegistry.from_settings(settings)
        )

    async def warm(self) -> None:
        """Open a pooled connection of each engine the jobs write and read with, so that a
        new process's first job does not wait for it; a database that does not answer in
        WARM_SECONDS is logged, and the job connects when it comes."""
        database = self.database
        try:
            async with asyncio.timeout(WARM_SECONDS):
                for engine in dict.fromkeys((database.writer_engine, database.reader_engine)):
                    async with engine.connect():
                        pass
        except Exception:  # any failure only leaves the connecting to the job
            log.warning("job process: no database connection yet", exc_info=True)

    async def aclose(self) -> None:
        await self.stores.aclose()
        await self.database.dispose()


class _Process:
    settings: Settings | None = None
    # Every thread's loop and runtime (the threads pool's are closed when the worker stops).
    started: dict[int, tuple[asyncio.AbstractEventLoop, WorkerRuntime]] = {}  # noqa: RUF012 -- one per process
    lock = threading.Lock()


class _Thread(threading.local):
    loop: asyncio.AbstractEventLoop | None = None
    runtime: WorkerRuntime | None = None


_process = _Process()
_thread = _Thread()


def configure(settings: Settings) -> None:
    """Remember the settings; the runtime itself is built in each pool process. The modules
    it needs (store drivers, database driver) are imported here, before the pool forks, so
    that the pool processes share them rather than each importing its own copy."""
    _process.settings = settings
    try:
        load_drivers(settings)
        import_driver(settings.database.connection)
    except (ValueError, ImportError):
        # An unsupported database URL or a missing driver: each pool process reports it
        # when it builds its runtime, as it would without this early import.
        return


def configured_settings() -> Settings | None:
    return _process.settings


def start() -> None:
    """Build this thread's loop and runtime (the `worker_process_init` handler, and a pool
    thread's first job)."""
    if _process.settings is None:
        msg = "runtime.configure(settings) must run before the worker starts"
        raise RuntimeError(msg)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = WorkerRuntime.build(_process.settings)
    _thread.loop, _thread.runtime = loop, runtime
    with _process.lock:
        _process.started[threading.get_ident()] = (loop, runtime)
    loop.run_until_complete(runtime.warm())


def stop() -> None:
    """Close what start() opened, in every thread of this process (the `worker_process_shutdown`
    and `worker_shutdown` handlers: the pool's jobs have ended by then)."""
    with _process.lock:
        started = list(_process.started.values())
        _process.started.clear()
    for loop, runtime in started:
        if loop.is_running():  # a job still on it (a cold shutdown): the exit closes all
            continue
        loop.run_until_complete(runtime.aclose())
        loop.close()
    _thread.loop = _thread.runtime = None


def current() -> WorkerRuntime:
    """This thread's runtime, built on first use."""
    if _thread.runtime is None:
        start()  # a pool thread (or a solo pool) has no process init
    assert _thread.runtime is not None  # noqa: S101 -- start() sets it
    return _thread.runtime


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    current()
    assert _thread.loop is not None  # noqa: S101 -- current() started the loop
    return _thread.loop.run_until_complete(coroutine)
