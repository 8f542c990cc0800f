"""The store driver contract every backend implements."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from glimpse.domain.ranges import ByteRange, Offset, Range, ResolvedRange, Suffix, resolve

__all__ = [
    "ByteRange",
    "Capability",
    "Offset",
    "Range",
    "ResolvedRange",
    "StoreDriver",
    "StoredEntry",
    "StoredObject",
    "Suffix",
    "resolve",
]


class Capability(enum.Flag):
    READ = enum.auto()
    WRITE = enum.auto()
    DELETE = enum.auto()
    RANGE_READ = enum.auto()
    DIRECT_URL = enum.auto()


@dataclass(frozen=True, slots=True)
class StoredObject:
    """What `put` wrote: where it lives, how big it is, and driver-specific metadata."""

    location: str
    size: int
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """One object a store lists for housekeeping."""

    name: str  # the key (a file store's file name)
    location: str
    modified: float  # seconds since the epoch


class StoreDriver(Protocol):
    """An async image store. Drivers need no base class; they only match this shape."""

    name: str
    capabilities: Capability

    def location_for(self, key: str) -> str:
        """The location `put(key, ...)` gives its object (the store's own URI scheme);
        CapabilityMissing for a store that takes no writes."""
        ...

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        """Write all of `chunks` under `key`. On error or cancellation nothing is left behind,
        and an object becomes visible under its final location only once it is complete."""
        ...

    def get(self, location: str, byte_range: ResolvedRange | None = None) -> AsyncIterator[bytes]:
        """Stream an object's bytes (a resolved span of it, if given)."""
        ...

    async def delete(self, location: str) -> None:
        """Remove an object; ObjectNotFound if it is not there."""
        ...

    async def size(self, location: str) -> int:
        """The object's size in bytes; ObjectNotFound if it is not there."""
        ...

    async def aclose(self) -> None:
        """Release connections and other resources."""
        ...


class StoreError(Exception):
    """A driver failed for a reason other than the ones below. `store` names the store a
    write failed in (CheckedStore sets it); the message never names a server path."""

    store: str | None = None


class ObjectNotFound(StoreError):
    pass


class StoreFull(StoreError):
    pass


class CapabilityMissing(StoreError):
    pass
