"""Deadlines for outbound calls: a connect or read timeout bounds one wait on a socket, not the
call, so a server that answers a byte at a time could hold a call forever. These bound a whole
call, or a stream as a whole and chunk by chunk."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator, Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """A call or stream ran past its deadline; the message says which and how long."""


async def bounded(
    chunks: AsyncIterable[bytes],
    what: str,
    *,
    each: float | None = None,
    total: float | None = None,
    since: float | None = None,
) -> AsyncIterator[bytes]:
    """Pass `chunks` through, failing with DeadlineExceeded when the source takes longer than
    `each` seconds to bring a chunk, or when `total` seconds (by the clock, from the loop time
    `since`, else from the first wait) have passed. Only waits for the source are
    interrupted, never the consumer's own work between chunks."""
    loop = asyncio.get_running_loop()
    end = None if total is None else (loop.time() if since is None else since) + total
    source = aiter(chunks)
    while True:
        limits = [each] if each is not None else []
        if end is not None:
            limits.append(end - loop.time())
        wait = min(limits) if limits else None
        timer = asyncio.timeout(None if wait is None else max(wait, 0.0))
        try:
            async with timer:
                chunk = await anext(source)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if not timer.expired():
                raise  # the source's own
            if end is not None and loop.time() >= end:
                raise DeadlineExceeded(f"{what} did not finish within {total:g} s") from None
            raise DeadlineExceeded(f"{what} stalled for {each:g} s") from None
        yield chunk


async def within(seconds: float, what: str, call: Awaitable[T]) -> T:
    """Await `call`, cancelling it after `seconds` with DeadlineExceeded."""
    timer = asyncio.timeout(seconds)
    try:
        async with timer:
            return await call
    except TimeoutError:
        if not timer.expired():
            raise
        raise DeadlineExceeded(f"{what} did not finish within {seconds:g} s") from None


async def acquire_within(semaphore: asyncio.Semaphore, seconds: float) -> bool:
    """Acquire `semaphore`, waiting at most `seconds`; whether it was acquired (the caller
    releases it then). A wait given up, or cancelled, never keeps a slot it was granted."""
    acquiring = asyncio.ensure_future(semaphore.acquire())
    try:
        done, _ = await asyncio.wait({acquiring}, timeout=max(seconds, 0.0))
    except BaseException:
        _give_back(semaphore, acquiring)
        raise
    if done:
        return True
    _give_back(semaphore, acquiring)
    return False


def _give_back(semaphore: asyncio.Semaphore, acquiring: asyncio.Future[Any]) -> None:
    acquiring.cancel()  # nothing to cancel once done

    def release(done: asyncio.Future[Any]) -> None:
        if not done.cancelled() and done.exception() is None:
            semaphore.release()

    acquiring.add_done_callback(release)
