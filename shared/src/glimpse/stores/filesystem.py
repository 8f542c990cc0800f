"""The `file` store: one file per image under a data directory.

Writes go to a hidden temporary name in the same directory, are fsynced and then renamed, so a
crash or a cancelled upload never leaves a partial image under its final name.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

import aiofiles
import aiofiles.os

from glimpse.config import Settings
from glimpse.stores.base import (
    Capability,
    ObjectNotFound,
    ResolvedRange,
    StoredEntry,
    StoredObject,
    StoreError,
    StoreFull,
)

READ_CHUNK: Final = 1024 * 1024
FLUSH_EVERY: Final = 64 * 1024 * 1024
TEMP_PREFIX: Final = ".partial-"
_RWF_NOWAIT: Final[int | None] = getattr(os, "RWF_NOWAIT", None)  # Linux only


class FilesystemStore:
    capabilities = Capability.READ | Capability.WRITE | Capability.DELETE | Capability.RANGE_READ

    def __init__(self, name: str, datadir: Path) -> None:
        self.name = name
        self.datadir = datadir.resolve()

    def _path_for_key(self, key: str) -> Path:
        path = (self.datadir / key).resolve()
        if path.parent != self.datadir or not key or key.startswith("."):
            msg = f"invalid object key {key!r}"
            raise StoreError(msg)
        return path

    def location_for(self, key: str) -> str:
        return self._path_for_key(key).as_uri()

    def path_for(self, location: str) -> Path:
        """The file behind one of this store's locations (StoreError for any other)."""
        parts = urlsplit(location)
        if parts.scheme != "file":
            msg = f"not a file location: {location!r}"
            raise StoreError(msg)
        path = Path(unquote(parts.path)).resolve()
        # Refuse anything outside this store's directory, whatever the location row says.
        if path.parent != self.datadir:
            msg = f"location outside the store directory: {location!r}"
            raise StoreError(msg)
        return path

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> StoredObject:
        final = self._path_for_key(key)
        temp = self.datadir / f"{TEMP_PREFIX}{key}-{uuid.uuid4().hex}"
        size = 0
        try:
            await aiofiles.os.makedirs(self.datadir, exist_ok=True)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)
            writer = _PipelinedWriter(fd)
            try:
                async for chunk in chunks:
                    await writer.write(chunk)
                    size += len(chunk)
                await writer.finish()
            finally:
                await writer.settle()
                os.close(fd)
            # Not awaited in a thread: a cancellation landing while the rename runs would
            # leave the object in place while the caller believes nothing was stored.
            temp.replace(final)
        except OSError as exc:
            await _remove_quietly(temp)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StoreFull(f"store {self.name} is full") from exc
            raise StoreError(f"write to store {self.name} failed: {exc.strerror}") from exc
        except BaseException:
            await _remove_quietly(temp)
            raise
        return StoredObject(location=self.location_for(key), size=size)

    async def get(
        self, location: str, byte_range: ResolvedRange | None = None
    ) -> AsyncIterator[bytes]:
        path = self.path_for(location)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise ObjectNotFound(location) from exc
        try:
            size = os.fstat(fd).st_size
            offset, stop = (byte_range.start, byte_range.stop) if byte_range else (0, size)
            while offset < stop:
                chunk = await _read(fd, offset, min(READ_CHUNK, stop - offset))
                if not chunk:
                    break
                offset += len(chunk)
                yield chunk
        finally:
            os.close(fd)

    async def delete(self, location: str) -> None:
        try:
            await aiofiles.os.remove(self.path_for(location))
        except FileNotFoundError as exc:
            raise ObjectNotFound(location) from exc

    async def size(self, location: str) -> int:
        try:
            stat = await aiofiles.os.stat(self.path_for(location))
        except FileNotFoundError as exc:
            raise ObjectNotFound(location) from exc
        return stat.st_size

    async def aclose(self) -> None:
        return None

    async def entries(self) -> list[StoredEntry]:
        """Every file in the data directory (temporary ones included), for housekeeping."""
        return await asyncio.to_thread(self._scan)

    def _scan(self) -> list[StoredEntry]:
        if not self.datadir.is_dir():
            return []
        with os.scandir(self.datadir) as found:
            return [
                StoredEntry(
                    entry.name, self.datadir.joinpath(entry.name).as_uri(), entry.stat().st_mtime
                )
                for entry in found
                if entry.is_file(follow_symlinks=False)
            ]


class _PipelinedWriter:
    """Writes chunks in a thread, one in flight while the next chunk arrives, and flushes to
    disk in the background every FLUSH_EVERY bytes, so the disk works during the upload and
    the final fsync has little left to do."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.writing: asyncio.Future[None] | None = None
        self.flushing: asyncio.Future[None] | None = None
        self.unflushed = 0

    async def write(self, chunk: bytes) -> None:
        loop = asyncio.get_running_loop()
        if self.writing is not None:
            await asyncio.shield(self.writing)
        self.writing = loop.run_in_executor(None, _write_all, self.fd, chunk)
        self.unflushed += len(chunk)
        if self.unflushed >= FLUSH_EVERY and (self.flushing is None or self.flushing.done()):
            if self.flushing is not None:
                self.flushing.result()
            self.flushing = loop.run_in_executor(None, os.fdatasync, self.fd)
            self.unflushed = 0

    async def finish(self) -> None:
        """Wait for every write and make the data durable; raises what a write raised."""
        for pending in (self.writing, self.flushing):
            if pending is not None:
                await asyncio.shield(pending)
        await asyncio.get_running_loop().run_in_executor(None, os.fsync, self.fd)

    async def settle(self) -> None:
        """Let running writes end before the file is closed or removed (never raises)."""
        pending = [f for f in (self.writing, self.flushing) if f is not None]
        await asyncio.gather(*pending, return_exceptions=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


async def _read(fd: int, offset: int, length: int) -> bytes:
    """Read from the page cache on the event loop when the data is there (a memory copy, far
    cheaper than a hand-off to a thread), else from disk in a thread so the loop never waits
    on the device. RWF_NOWAIT on the span's last byte tells which, without blocking."""
    cached = False
    if _RWF_NOWAIT is not None:
        with contextlib.suppress(OSError):  # BlockingIOError: not cached
            cached = os.preadv(fd, [bytearray(1)], offset + length - 1, _RWF_NOWAIT) == 1
    if cached:
        return os.pread(fd, length, offset)
    return await asyncio.get_running_loop().run_in_executor(None, os.pread, fd, length, offset)


async def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)


def from_settings(store_id: str, settings: Settings) -> FilesystemStore:
    return FilesystemStore(store_id, settings.store_datadir(store_id))


# For the image cache, which reads its files as this store does.
read_at = _read
write_all = _write_all
