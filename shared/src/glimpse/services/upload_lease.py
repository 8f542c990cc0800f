"""The lease an API node holds on an image while it writes the image's data (`saving`).

The claim (queued -> saving) records an upload id and a lease of `[scrubber] lease_time`
seconds, and the node renews the lease every third of that while the data streams, however
slowly it comes. A node that dies mid-upload (kill -9, a lost machine), or that could not
record the upload's failure (its database was down), stops renewing: once the lease has run
out, housekeeping (each scrubber pass, each API start-up sweep) takes the image back to queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from types import TracebackType
from typing import Self

from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import utcnow
from glimpse.domain.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

RENEWALS_PER_LEASE = 3


def lease_until(lease_time: float) -> datetime:
    return utcnow() + timedelta(seconds=lease_time)


class UploadLease:
    """Renews the lease of upload `upload_id` on `image_id` while the context is open."""

    def __init__(
        self, database: Database, image_id: str, upload_id: str, lease_time: float
    ) -> None:
        self.db = database
        self.image_id = image_id
        self.upload_id = upload_id
        self.lease_time = lease_time
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._renew())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self.lease_time / RENEWALS_PER_LEASE)
            try:
                async with self.db.write() as session:
                    held = await ImageRepository(session).renew_upload(
                        self.image_id, self.upload_id, lease_until(self.lease_time)
                    )
            except DatabaseUnavailable:
                # Retried at the next renewal; the lease still holds until it runs out.
                log.warning("image %s: could not renew the upload's lease", self.image_id)
                continue
            if not held:
                # Taken back (the lease ran out) or deleted: this upload will not activate it.
                log.warning("image %s: the upload's lease was lost", self.image_id)
                return
