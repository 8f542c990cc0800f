"""A connection's transport that sends a response's head and its body in one write
(glimpse_api.http_protocol's connections use it).

uvicorn writes the status line and headers when the application starts the response, then
the body when it comes: two system calls and two TCP segments for a metadata answer of a
kilobyte, the costliest step of a show after the database. Here the connection's transport
holds a small write (the head) until the next write, the connection's close or the event
loop's next turn, whichever comes first, and sends what it held with it: a response whose
body follows at once (every JSON answer) goes out in one send. Large writes (image data) are
never held, so at most one small write per connection waits, and for one loop turn at most.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

# A response head is a few hundred bytes; a write larger than this goes out at once.
HELD_AT_MOST: Final = 4096


class HeadHoldingTransport:
    """The connection's transport, holding at most one small write (see the module)."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(b"".join((held, data)))
        elif len(data) <= HELD_AT_MOST:
            self._held = bytes(data)
            self._loop.call_soon(self._release)
        else:
            self._transport.write(data)

    def _release(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self._release()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # noqa: ANN401 -- the transport's own attributes
        return getattr(self._transport, name)
