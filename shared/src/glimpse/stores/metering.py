"""Size limits and hashing, done once above every driver while the data streams.

Chunks are coalesced into blocks so each block costs one hand-off to the hashing threads, and
the block is hashed (md5 and the multihash in parallel; hashlib drops the GIL) while the store
writes it and the next block arrives from the network.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Final

from glimpse.domain.errors import SizeMismatch

BLOCK_SIZE: Final = 1024 * 1024
_HASH_THREADS: Final = ThreadPoolExecutor(max_workers=8, thread_name_prefix="glimpse-hash")


@dataclass(slots=True)
class Meter:
    """Filled in while the data streams; read it once the stream is exhausted."""

    hash_algo: str
    size: int = 0
    checksum: str | None = None
    hash_value: str | None = None
    _md5: Any = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    _multihash: Any = None

    def __post_init__(self) -> None:
        self._multihash = hashlib.new(self.hash_algo)

    def finish(self) -> None:
        self.checksum = self._md5.hexdigest()
        self.hash_value = self._multihash.hexdigest()


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
    loop = asyncio.get_running_loop()
    pending: asyncio.Future[list[None]] | None = None
    try:
        async for block in coalesce(chunks):
            meter.size += len(block)
            if limit is not None and meter.size > limit:
                raise on_limit()
            if expected_size is not None and meter.size > expected_size:
                msg = f"Size exceeds: expected {expected_size} bytes, got {meter.size} bytes"
                raise SizeMismatch(msg)
            if pending is not None:
                await pending  # the hashers must see blocks in order
            pending = asyncio.gather(
                loop.run_in_executor(_HASH_THREADS, meter._md5.update, block),  # noqa: SLF001
                loop.run_in_executor(_HASH_THREADS, meter._multihash.update, block),  # noqa: SLF001
            )
            yield block
        if expected_size is not None and meter.size != expected_size:
            msg = f"Size mismatch: expected {expected_size} bytes, got {meter.size} bytes"
            raise SizeMismatch(msg)
        if pending is not None:
            await pending
            pending = None
        meter.finish()
    finally:
        if pending is not None:
            # Let in-flight hashing settle; its result is discarded with the failed upload.
            await asyncio.gather(pending, return_exceptions=True)
