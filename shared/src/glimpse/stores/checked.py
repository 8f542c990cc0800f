"""The one wrapper for cross-driver concerns: capability checks, error mapping, logging.

A write that fails in the store raises StoreError (StoreFull when it is full) naming the store,
whatever the driver raised; `failure_for` says once what that means to a client. A failure of
the data being written (the client's body, a limit, another store's read) is not the store's:
it passes through unchanged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Protocol, runtime_checkable

from glimpse.domain.errors import GlimpseError, LimitExceeded, StoreUnavailable
from glimpse.domain.redaction import redact_url
from glimpse.stores.base import (
    Capability,
    CapabilityMissing,
    ObjectNotFound,
    ResolvedRange,
    StoredObject,
    StoreDriver,
    StoreError,
    StoreFull,
)

log = logging.getLogger(__name__)


@runtime_checkable
class LocalFiles(Protocol):
    """A driver whose objects are files on this host (the file store)."""

    def path_for(self, location: str) -> Path: ...


def failure_for(exc: StoreError) -> GlimpseError:
    """What a store failure means to a client: a full store is 413 (as Glance's StorageFull),
    any other failure 503 (as its StorageWriteDenied)."""
    if isinstance(exc, StoreFull):
        return LimitExceeded(f"Image storage media is full: {exc}")
    if exc.store is not None:
        return StoreUnavailable(f"Store {exc.store} failed: {exc}")
    # Not a write's: its text may name a location, which a client must not see.
    return StoreUnavailable("The image store is unavailable.")


class _Watched:
    """The data being written, remembering the error it raised itself."""

    def __init__(self, chunks: AsyncIterable[bytes]) -> None:
        self._chunks = chunks
        self.error: Exception | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                yield chunk
        except Exception as exc:
            self.error = exc
            raise

    def raised(self, exc: BaseException) -> bool:
        return self.error is not None and self.error in (exc, exc.__cause__)


class CheckedStore:
    def __init__(self, driver: StoreDriver) -> None:
        self.driver = driver
        self.name = driver.name
        self.capabilities = driver.capabilities

    def _require(self, capability: Capability) -> None:
        if capability not in self.capabilities:
            msg = f"store {self.name} cannot {capability.name}"
            raise CapabilityMissing(msg)

    def location_for(self, key: str) -> str:
        """Where `put(key, ...)` stores its object."""
        self._require(Capability.WRITE)
        return self.driver.location_for(key)

    @property
    def keeps_local_files(self) -> bool:
        return isinstance(self.driver, LocalFiles)

    def local_path(self, location: str) -> Path:
        """The file behind a location of a store kept on this host's disk (the staging store,
        whose files the import plugins work on in place)."""
        if not isinstance(self.driver, LocalFiles):
            msg = f"store {self.name} keeps no local files"
            raise CapabilityMissing(msg)
        return self.driver.path_for(location)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        self._require(Capability.WRITE)
        started = time.monotonic()
        data = _Watched(chunks)
        try:
            stored = await self.driver.put(key, data)
        except (StoreError, OSError) as exc:
            if data.raised(exc):
                raise
            log.warning("store %s: put %s failed: %s", self.name, key, exc)
            if isinstance(exc, StoreError):
                exc.store = self.name
                raise
            # strerror only: an OSError's text names paths of the server.
            failure = StoreError(exc.strerror or type(exc).__name__)
            failure.store = self.name
            raise failure from exc
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
