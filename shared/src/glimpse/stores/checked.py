"""The one wrapper for cross-driver concerns: capability checks, error mapping, logging."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator

from glimpse.domain.redaction import redact_url
from glimpse.stores.base import (
    Capability,
    CapabilityMissing,
    ObjectNotFound,
    ResolvedRange,
    StoredObject,
    StoreDriver,
    StoreError,
)

log = logging.getLogger(__name__)


class CheckedStore:
    def __init__(self, driver: StoreDriver) -> None:
        self.driver = driver
        self.name = driver.name
        self.capabilities = driver.capabilities

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            msg = f"store {self.name} cannot {capability.name}"
            raise CapabilityMissing(msg)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        self._require(Capability.WRITE)
        started = time.monotonic()
        try:
            stored = await self.driver.put(key, chunks)
        except (StoreError, OSError) as exc:
            log.warning("store %s: put %s failed: %s", self.name, key, exc)
            raise
        elapsed = time.monotonic() - started
        log.info("store %s: put %s, %d bytes in %.2fs", self.name, key, stored.size, elapsed)
        return stored

    def get(self, location: str, byte_range: ResolvedRange | None = None) -> AsyncIterator[bytes]:
        self._require(Capability.READ)
        if byte_range is not None:
            self._require(Capability.RANGE_READ)
        return self.driver.get(location, byte_range)

    async def delete(self, location: str) -> None:
        self._require(Capability.DELETE)
        await self.driver.delete(location)
        log.info("store %s: deleted %s", self.name, redact_url(location))

    async def delete_if_present(self, location: str) -> bool:
        """Delete, treating an object already gone as done; True if something was removed."""
        try:
            await self.delete(location)
        except ObjectNotFound:
            return False
        return True

    async def size(self, location: str) -> int:
        return await self.driver.size(location)

    async def aclose(self) -> None:
        await self.driver.aclose()
