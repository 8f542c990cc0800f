"""One pass over an import's data, sent to every store written side by side.

The source is read once, whatever the number of stores: each store's write takes the blocks
from a short queue of its own (a slow store holds the pass back, never lets it run ahead in
memory). A write that ends, for any reason, leaves the pass, which goes on for the others.
The source itself decides when its data is good: it holds its last block back until its
checks passed (hashes, inspection, signature), so a store never completes an object from a
pass that fails; the writes then fail, and a failed write leaves nothing behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Final

BLOCKS_AHEAD: Final = 4  # blocks read ahead of the slowest store, at most


class SourceFailed(Exception):
    """The data being written failed (not a store): the message is the source's."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


class PassStopped(Exception):
    """The pass ended because the import failed elsewhere; the writes stop at their next block."""


_END: Final = object()
_FAILED: Final = object()
_STOPPED: Final = object()


class Fanout:
    """`source` read once, its blocks delivered to each lane (one per store)."""

    def __init__(self, source: AsyncIterator[bytes], lanes: list[str]) -> None:
        self._source = source
        self._queues: dict[str, asyncio.Queue[object]] = {
            lane: asyncio.Queue(BLOCKS_AHEAD) for lane in lanes
        }
        self.error: Exception | None = None  # what the source raised

    async def pump(self, stop: asyncio.Event) -> None:
        """Read the source to its end (or until `stop`), delivering each block to the lanes
        still listening; then tell them the data ended, or failed."""
        ending: object = _END
        try:
            async for block in self._source:
                if stop.is_set():
                    ending = _STOPPED
                    break
                await self._deliver(block)
        except Exception as exc:  # noqa: BLE001 -- the source's failure is the writes' too
            self.error = exc
            ending = _FAILED
        finally:
            # A pass stopped early lets the source go now (its files, threads and checks).
            close = getattr(self._source, "aclose", None)
            if close is not None:
                await close()
        await self._deliver(ending)

    async def _deliver(self, item: object) -> None:
        for queue in list(self._queues.values()):
            # A lane that leaves while this waits empties its queue, which lets this go on.
            await queue.put(item)

    def leave(self, lane: str) -> None:
        """The lane's write ended: never wait for it again."""
        queue = self._queues.pop(lane, None)
        while queue is not None and not queue.empty():
            queue.get_nowait()

    async def lane(self, lane: str) -> AsyncIterator[bytes]:
        """The data, block by block, for one store's write."""
        queue = self._queues[lane]
        while True:
            item = await queue.get()
            if item is _END:
                return
            if item is _FAILED and self.error is not None:
                raise SourceFailed(self.error)
            if not isinstance(item, bytes):
                msg = "stopped: the import failed"
                raise PassStopped(msg)
            yield item
