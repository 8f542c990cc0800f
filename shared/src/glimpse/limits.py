"""The limits on image data, with the messages Glance gives when one is passed: `image_size_cap`
(the bytes one image may hold) and `user_storage_quota` (the bytes an owner may store).

The storage quota is enforced while data is written, across every API node and worker. What an
owner stores is the sizes its images' rows record plus the reservations of the images being
written (StorageReservation). A writer reserves bytes before it lets them through to a store:
in one write transaction, under the owner's row lock, it checks that the owner's other images
and reservations leave room, and records its own reservation. So any number of parallel
uploads, stages and imports, on any node, cannot together pass the quota: one that would is
refused (413 for a request, a failed task for an import) and keeps nothing.

A stream reserves ahead of the bytes it has seen (RESERVE_AHEAD, or a quarter of the room left
when that is less), so it asks the database about once per RESERVE_AHEAD bytes; it renews its
lease while it flows, and the import job renews it with its own lease. The reservation goes in
the transaction that records the image's size, or that gives the data up; a process that dies
leaves it to lapse once its lease (`[task] lease_time`) runs out.
"""

from __future__ import annotations

import copy
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.tables import utcnow
from glimpse.domain.errors import LimitExceeded
from glimpse.stores.metering import Meter, metered

MiB: Final = 1024 * 1024
RESERVE_AHEAD: Final = 16 * MiB


def cap_message(cap: int) -> str:
    return f"The incoming image is too large: image_size_cap is {cap} bytes"


def check_size_cap(cap: int, size: int | None) -> None:
    """Refuse a size announced past `cap` (image_size_cap) before any byte is read."""
    if size is not None and size > cap:
        raise LimitExceeded(cap_message(cap))


def capped(
    chunks: AsyncIterable[bytes], meter: Meter, cap: int, *, expected_size: int | None = None
) -> AsyncIterator[bytes]:
    """`chunks` counted and hashed into `meter`, refused past `cap` bytes (image_size_cap)
    and when they differ from `expected_size` (see metered)."""
    return metered(
        chunks,
        meter,
        limit=cap,
        on_limit=lambda: LimitExceeded(cap_message(cap)),
        expected_size=expected_size,
    )


def quota_message(quota: int) -> str:
    return f"Denying attempt to upload image because it exceeds the quota: {quota} bytes"


Refusal = Callable[[int, int], str]  # (bytes used by the others, bytes asked) -> message


class StorageQuota:
    def __init__(self, settings: Settings, database: Database) -> None:
        # With use_keystone_limits the quota is the project's image_size_total (see bound).
        self.quota = 0 if settings.use_keystone_limits else settings.user_storage_quota
        self.lease = timedelta(seconds=settings.task.lease_time)
        self.db = database
        self.enabled = self.quota > 0
        self.refusal: Refusal = lambda _used, _need: quota_message(self.quota)

    def bound(self, quota: int | None, refusal: Refusal) -> StorageQuota:
        """This quota with another limit in bytes (None: unlimited) and refusal message."""
        other = copy.copy(self)
        other.quota, other.enabled, other.refusal = quota or 0, quota is not None, refusal
        return other

    async def reserve_in(
        self,
        session: AsyncSession,
        image_id: str,
        owner: str | None,
        need: int,
        ahead: int = 0,
    ) -> int:
        """Within the caller's write transaction: let the image hold `need` bytes in all, and
        up to `ahead` more while there is room, reserving what its row does not record yet.
        Returns the bytes the image may now hold; LimitExceeded if `need` does not fit."""
        repo = ReservationRepository(session)
        await repo.lock_owner(owner)
        now = utcnow()
        await repo.drop_expired(owner, now)
        used = await repo.used(owner, now, besides=image_id)
        room = self.quota - used
        if need > room:
            raise LimitExceeded(self.refusal(used, need))
        # Near the quota a writer takes only a share of what is left, so parallel writers
        # are not refused for room another merely reserved ahead.
        granted = need + min(ahead, (room - need) // 4)
        extra = granted - await repo.recorded_size(image_id)
        if extra > 0:
            await repo.hold(owner, image_id, extra, now + self.lease)
        else:
            await repo.release(image_id)
        return granted

    async def reserve_claim(
        self, session: AsyncSession, image_id: str, owner: str | None, body_size: int | None
    ) -> int:
        """What an incoming image reserves in the transaction that claims it for writing: the
        whole body when its size is known, else room for a first stretch of it. 0 without a
        quota (nothing is reserved then)."""
        if not self.enabled:
            return 0
        if body_size is not None:
            return await self.reserve_in(session, image_id, owner, max(body_size, 1))
        return await self.reserve_in(session, image_id, owner, 1, RESERVE_AHEAD)

    async def reserve(self, image_id: str, owner: str | None, need: int, ahead: int = 0) -> int:
        """`reserve_in`, in a transaction of its own."""
        if not self.enabled:
            return need + ahead
        async with self.db.write() as session:
            return await self.reserve_in(session, image_id, owner, need, ahead)

    async def release(self, image_id: str) -> None:
        async with self.db.write() as session:
            await ReservationRepository(session).release(image_id)

    async def guard(
        self,
        image_id: str,
        owner: str | None,
        chunks: AsyncIterable[bytes],
        *,
        granted: int = 0,
    ) -> AsyncIterator[bytes]:
        """Pass `chunks` through, reserving before a chunk would take the image past what it
        may hold (`granted` to begin with): no chunk reaches the store unreserved. Renews the
        reservation's lease while the data flows."""
        if not self.enabled:
            async for chunk in chunks:
                yield chunk
            return
        size = 0
        renew_after = self.lease.total_seconds() / 3
        renewed = time.monotonic()
        async for chunk in chunks:
            size += len(chunk)
            if size > granted or time.monotonic() - renewed > renew_after:
                granted = await self.reserve(image_id, owner, size, RESERVE_AHEAD)
                renewed = time.monotonic()
            yield chunk
