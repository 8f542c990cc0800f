"""Graceful drain of an API process on SIGTERM, in front of uvicorn's own shutdown.

uvicorn stops accepting as soon as it gets SIGTERM: a balancer still sends to the node until its
next failed health check, and those requests would meet a closed port. With `[healthcheck]
drain_delay` the first SIGTERM only starts draining (the health check answers 503, responses
close their connections) and reaches uvicorn's handler `drain_delay` seconds later; uvicorn then
stops accepting and lets the requests in progress finish (graceful_shutdown_timeout). A second
SIGTERM, or SIGINT, stops at once as before.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import FrameType

from glimpse.services.health import draining, start_draining

log = logging.getLogger(__name__)


@asynccontextmanager
async def drain_on_sigterm(delay: float) -> AsyncIterator[None]:
    """While the application runs, the first SIGTERM drains for `delay` seconds before the
    server's own handler (installed before the lifespan starts) sees it."""
    server_handler = signal.getsignal(signal.SIGTERM)
    if delay <= 0 or not callable(server_handler):
        yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach only the main thread's handlers
        return
    loop = asyncio.get_running_loop()

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if draining():
            server_handler(signum, frame)
            return
        start_draining()
        log.info("SIGTERM: draining for %.1f s before closing the listener", delay)
        loop.call_soon_threadsafe(loop.call_later, delay, server_handler, signum, None)

    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGTERM) is on_sigterm:
            signal.signal(signal.SIGTERM, server_handler)
