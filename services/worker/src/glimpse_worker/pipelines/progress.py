"""An import's progress: "Copied N MiB" on the task, and the renewal of its lease."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from typing import Any, Final

from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import utcnow
from glimpse_worker.runtime import WorkerContext

MiB: Final = 1024 * 1024
PROGRESS_SECONDS: Final = 5.0  # at most one progress write (and lease renewal) this often


class Progress:
    """Writes "Copied N MiB" to the task and renews its lease, throttled."""

    def __init__(self, ctx: WorkerContext, task_id: str) -> None:
        self.ctx = ctx
        self.task_id = task_id
        self.done = 0
        self._last = time.monotonic()

    def lease_until(self) -> Any:  # noqa: ANN401 -- a naive UTC datetime
        return utcnow() + timedelta(seconds=self.ctx.settings.task.lease_time)

    async def beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        async with self.ctx.database.write() as session:
            await TaskRepository(session).heartbeat(
                self.task_id, f"Copied {self.done // MiB} MiB", self.lease_until()
            )

    async def count(self, chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.done += len(chunk)
            yield chunk
            await self.beat()
