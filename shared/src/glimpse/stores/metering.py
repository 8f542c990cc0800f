"""Size limits and hashing, done once above every driver while the data streams.

Chunks are coalesced into blocks. Each hasher (md5, the multihash, and the hash an image
signature is checked against when it is another algorithm) has its own single thread, so
blocks are hashed in order, in parallel with each other (hashlib drops the GIL), and in
parallel with the network and the store: the stream only waits when more than
MAX_BLOCKS_IN_FLIGHT blocks are still being hashed, which bounds memory per upload.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

from glimpse.domain.errors import SizeMismatch
from glimpse.domain.images import ImageData
from glimpse.malloc_tuning import release_free_memory

BLOCK_SIZE: Final = 1024 * 1024
MAX_BLOCKS_IN_FLIGHT: Final = 4
# After a stream this long, free heap memory goes back to the system (a pass over the heap is
# worth it only once many blocks have gone through).
TRIM_AFTER_BYTES: Final = 16 * BLOCK_SIZE


class Meter:
    """Counts and hashes a stream; read `checksum` and `hash_value` (or any algorithm's
    `digest`) once it is exhausted.

    `also` names further hashlib algorithms to compute in the same pass (a signature's hash
    method); one that is the multihash's is not computed twice.
    """

    def __init__(self, hash_algo: str, also: Iterable[str] = ()) -> None:
        self.hash_algo = hash_algo
        self.size = 0
        self.checksum: str | None = None
        self.hash_value: str | None = None
        self._extra = tuple(dict.fromkeys(name for name in also if name != hash_algo))
        self._hashers: tuple[Any, ...] = (
            hashlib.md5(usedforsecurity=False),
            hashlib.new(hash_algo),
            *(hashlib.new(name) for name in self._extra),
        )
        self._digests: dict[str, bytes] = {}
        self._threads = tuple(
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="glimpse-hash")
            for _ in self._hashers
        )
        self._pending: deque[Future[None]] = deque()

    def feed(self, block: bytes) -> None:
        """Queue `block` on every hasher (each thread keeps its blocks in order)."""
        for hasher, thread in zip(self._hashers, self._threads, strict=True):
            self._pending.append(thread.submit(hasher.update, block))

    async def settle(self, keep: int = 0) -> None:
        """Wait until at most `keep` blocks per hasher are still being hashed."""
        pending = self._pending
        while len(pending) > keep * len(self._hashers):
            oldest = pending.popleft()
            if oldest.done():
                # No hand-off through the event loop (wrap_future's) for a block hashed by now.
                oldest.result()
            else:
                await asyncio.wrap_future(oldest)

    def finish(self) -> None:
        self.checksum = self._hashers[0].hexdigest()
        names = (self.hash_algo, *self._extra)
        self._digests = {name: h.digest() for name, h in zip(names, self._hashers[1:], strict=True)}
        self.hash_value = self._digests[self.hash_algo].hex()

    def digest(self, name: str) -> bytes:
        """The raw digest, by hashlib algorithm name, of the multihash or an `also` hash."""
        return self._digests[name]

    def image_data(self) -> ImageData:
        """The size and hashes of what went through, as an image records them."""
        return {
            "size": self.size,
            "checksum": self.checksum,
            "os_hash_algo": self.hash_algo,
            "os_hash_value": self.hash_value,
        }

    def close(self) -> None:
        for thread in self._threads:
            thread.shutdown(wait=False, cancel_futures=True)


async def coalesce(
    chunks: AsyncIterable[bytes], block_size: int = BLOCK_SIZE
) -> AsyncIterator[bytes]:
    """Re-chunk a stream into blocks of at least `block_size` bytes (the last may be smaller)."""
    parts: list[bytes] = []
    buffered = 0
    async for chunk in chunks:
        if not chunk:
            continue
        parts.append(chunk)
        buffered += len(chunk)
        if buffered >= block_size:
            yield b"".join(parts)
            parts.clear()
            buffered = 0
    if parts:
        yield b"".join(parts)


async def metered(
    chunks: AsyncIterable[bytes],
    meter: Meter,
    *,
    limit: int | None,
    on_limit: Callable[[], Exception],
    expected_size: int | None = None,
) -> AsyncIterator[bytes]:
    """Pass blocks through, counting and hashing them; raise `on_limit()` past `limit` bytes
    and SizeMismatch if the stream is longer or shorter than `expected_size`.

    A block that would cross a limit is never yielded, so no store sees it.
    """
    try:
        async for block in coalesce(chunks):
            meter.size += len(block)
            if limit is not None and meter.size > limit:
                raise on_limit()
            if expected_size is not None and meter.size > expected_size:
                msg = f"Size exceeds: expected {expected_size} bytes, got {meter.size} bytes"
                raise SizeMismatch(msg)
            await meter.settle(keep=MAX_BLOCKS_IN_FLIGHT - 1)
            meter.feed(block)
            yield block
        if expected_size is not None and meter.size != expected_size:
            msg = f"Size mismatch: expected {expected_size} bytes, got {meter.size} bytes"
            raise SizeMismatch(msg)
        await meter.settle()
        meter.finish()
    finally:
        meter.close()
        if meter.size >= TRIM_AFTER_BYTES:
            # The network buffers of a large transfer leave free holes in the heap that
            # glibc keeps until told otherwise.
            release_free_memory()
