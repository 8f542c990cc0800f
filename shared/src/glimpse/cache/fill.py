"""Single-flight fills: one read of the store per image per process, however many clients ask.

A fill copies the store's stream into a file under `incomplete/`, counting and hashing it. Every
client of that image, the first included, follows the file as it grows, so a slow client never
slows the fill and the store is read once. The last byte is handed out only after the whole
file has been verified (size, checksum and multihash) and recorded: a client of a fill that
turns out corrupt or short gets a cut-off response, never complete wrong data, and the file is
discarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from glimpse.cache.files import read_file
from glimpse.domain.errors import SizeMismatch
from glimpse.stores.filesystem import READ_CHUNK, read_at, write_all
from glimpse.stores.metering import Meter, metered

log = logging.getLogger(__name__)


class FillFailed(Exception):
    """The fill did not end with the image's verified data in the cache."""


class CorruptData(FillFailed):
    """The store's data is not what the image's row records (size or digests)."""


@dataclass(frozen=True, slots=True)
class Expected:
    """What the image's row says its data is."""

    size: int
    checksum: str | None
    hash_algo: str | None
    hash_value: str | None


class Fill:
    """One image being copied into this node's cache. `commit(path)` is called once the data is
    verified and fsynced; it records the fill and moves the file to its final name, returning
    False when the image may not be cached any more (deleted or deactivated meanwhile)."""

    def __init__(self, image_id: str, partial: Path, final: Path, expected: Expected) -> None:
        self.image_id = image_id
        self.partial = partial
        self.final = final  # where commit puts the file
        self.expected = expected
        self.written = 0
        self.verified = False
        self.finished = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        # Created now, so followers can open it before the first byte arrives.
        self.fd = os.open(partial, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def run(
        self, source: AsyncIterator[bytes], commit: Callable[[Path], Awaitable[bool]]
    ) -> bool:
        """Copy, verify and commit; True if the image is now cached. Never raises but for
        cancellation; the partial file is gone whatever happens."""
        expected = self.expected
        meter = Meter(expected.hash_algo or "sha512")
        try:
            async for block in metered(
                source,
                meter,
                limit=expected.size,
                on_limit=lambda: CorruptData("the store returned more data than recorded"),
                expected_size=expected.size,
            ):
                await asyncio.to_thread(write_all, self.fd, block)
                self.written += len(block)
                self._notify()
            self._verify(meter)
            await asyncio.to_thread(os.fsync, self.fd)
            await self._commit(commit)
        except BaseException as exc:
            # metered's SizeMismatch: shorter than recorded.
            self.error = CorruptData(str(exc)) if isinstance(exc, SizeMismatch) else exc
            with contextlib.suppress(FileNotFoundError):
                self.partial.unlink()
            if not isinstance(exc, Exception):
                raise
            log.warning("image %s: cache fill discarded: %s", self.image_id, exc)
            return False
        finally:
            close = getattr(source, "aclose", None)  # an async generator's, if it is one
            if close is not None:
                with contextlib.suppress(RuntimeError):
                    await close()
            os.close(self.fd)
            self.finished = True
            self._notify()
        return True

    async def _commit(self, commit: Callable[[Path], Awaitable[bool]]) -> None:
        if not await commit(self.partial):
            msg = "the image may no longer be cached"
            raise FillFailed(msg)
        self.verified = True

    def _verify(self, meter: Meter) -> None:
        expected = self.expected
        if expected.checksum and meter.checksum != expected.checksum:
            msg = f"checksum {meter.checksum} is not the recorded {expected.checksum}"
            raise CorruptData(msg)
        if expected.hash_value and expected.hash_algo and meter.hash_value != expected.hash_value:
            msg = f"{expected.hash_algo} digest is not the recorded one"
            raise CorruptData(msg)

    async def _available(self, offset: int) -> int:
        """How far a follower at `offset` may read: wait for more data, and hold back the last
        byte until the fill is verified."""
        while True:
            changed = self._changed
            if self.error is not None:
                msg = f"cache fill of image {self.image_id} failed: {self.error}"
                raise FillFailed(msg) from self.error
            limit = (
                self.expected.size if self.verified else min(self.written, self.expected.size - 1)
            )
            if limit > offset or (self.finished and self.verified):
                return limit
            await changed.wait()

    async def wait(self) -> None:
        """Until the fill has ended, however it ended."""
        while not self.finished:
            await self._changed.wait()

    def follow(self) -> AsyncIterator[bytes]:
        """A new reader of the whole image, following the fill (or reading its file, if it
        has just ended well)."""
        if not self.finished:
            return self._follow(os.dup(self.fd))
        if not self.verified:
            msg = f"cache fill of image {self.image_id} failed"
            raise FillFailed(msg) from self.error
        fd = os.open(self.final, os.O_RDONLY | os.O_CLOEXEC)
        return read_file(fd, 0, self.expected.size)

    async def _follow(self, fd: int) -> AsyncIterator[bytes]:
        try:
            offset = 0
            size = self.expected.size
            while offset < size:
                limit = await self._available(offset)
                while offset < limit:
                    chunk = await read_at(fd, offset, min(READ_CHUNK, limit - offset))
                    if not chunk:
                        msg = "cache file shorter than written"
                        raise FillFailed(msg)
                    offset += len(chunk)
                    yield chunk
        finally:
            os.close(fd)


class Flights:
    """The fills running in this process, by image id."""

    def __init__(self) -> None:
        self._fills: dict[str, Fill] = {}
        self._tasks: set[asyncio.Task[bool]] = set()
        self._completed: dict[str, int] = {}

    def completed(self, image_id: str) -> int:
        """How many fills of the image have ended in this process (a change means: look in
        the cache again)."""
        return self._completed.get(image_id, 0)

    def get(self, image_id: str) -> Fill | None:
        return self._fills.get(image_id)

    def partials(self) -> set[Path]:
        return {fill.partial for fill in self._fills.values()}

    def start(
        self,
        fill: Fill,
        source: AsyncIterator[bytes],
        commit: Callable[[Path], Awaitable[bool]],
    ) -> asyncio.Task[bool]:
        """Run `fill` on its own task: it outlives the request that started it, so every
        follower (and the cache) gets the data even if that client goes away."""
        self._fills[fill.image_id] = fill

        async def run() -> bool:
            try:
                return await fill.run(source, commit)
            finally:
                self._fills.pop(fill.image_id, None)
                self._completed[fill.image_id] = self.completed(fill.image_id) + 1

        task = asyncio.create_task(run(), name=f"cache-fill-{fill.image_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


__all__ = ["Expected", "Fill", "FillFailed", "Flights", "read_file"]
