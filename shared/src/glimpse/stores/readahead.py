"""Read one chunk ahead of the consumer, so a store read overlaps the network send."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator


async def read_ahead(stream: AsyncGenerator[bytes, None]) -> AsyncIterator[bytes]:
    """Yield `stream`'s chunks while the next one is already being read."""
    pending: asyncio.Future[bytes | None] = asyncio.ensure_future(anext(stream, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(anext(stream, None))
            yield chunk
    finally:
        if not pending.done():
            pending.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await pending
        await stream.aclose()
