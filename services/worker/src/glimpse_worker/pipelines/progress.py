"""An import's progress: "Copied N MiB" on the task, and the renewal of its lease (and of
its image's storage reservation)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator
from datetime import timedelta
from typing import Any, Final

from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import utcnow
from glimpse_worker.runtime import WorkerRuntime

MiB: Final = 1024 * 1024
PROGRESS_SECONDS: Final = 5.0  # at most one progress write (and lease renewal) this often


class Progress:
    """Writes "Copied N MiB" to the task and renews its lease, throttled.

    Streams counted in a lane (one per target store, written side by side) report what every
    lane still running has received: the slowest store's progress."""

    def __init__(self, runtime: WorkerRuntime, task_id: str) -> None:
        self.runtime = runtime
        self.task_id = task_id
        # The image whose storage reservation lives as long as the task's lease (once known).
        self.image_id: str | None = None
        self.done = 0
        self._lanes: dict[str, int] = {}
        self._last = time.monotonic()

    @property
    def copied(self) -> int:
        return min(self._lanes.values()) if self._lanes else self.done

    def drop(self, lane: str) -> None:
        """Stop counting a lane whose stream failed."""
        self._lanes.pop(lane, None)

    def lease_until(self) -> Any:  # noqa: ANN401 -- a naive UTC datetime
        return utcnow() + timedelta(seconds=self.runtime.settings.task.lease_time)

    async def beat(self, *, force: bool = False, report: bool = True) -> None:
        """Renew the lease (and, with `report`, write "Copied N MiB"), at most every
        PROGRESS_SECONDS unless forced. Steps that copy nothing (the hashing and inspection
        pass) renew without a report, so a long one keeps its lease and the last message."""
        now = time.monotonic()
        if not force and now - self._last < PROGRESS_SECONDS:
            return
        self._last = now
        message = f"Copied {self.copied // MiB} MiB" if report else None
        lease_until = self.lease_until()
        async with self.runtime.database.write() as session:
            await TaskRepository(session).heartbeat(self.task_id, message, lease_until)
            if self.image_id is not None:
                await ReservationRepository(session).renew(self.image_id, lease_until)

    async def count(
        self, chunks: AsyncIterable[bytes], lane: str | None = None
    ) -> AsyncIterator[bytes]:
        if lane is not None:
            self._lanes[lane] = 0
        async for chunk in chunks:
            if lane is None:
                self.done += len(chunk)
            else:
                self._lanes[lane] = self._lanes.get(lane, 0) + len(chunk)
            yield chunk
            await self.beat()
