"""uvicorn's httptools protocol, reading request bodies in large pieces and handing them to the
application in large messages.

uvicorn wakes the application for every read from the socket and stops reading past 64 KiB
buffered: an image upload then costs some sixteen thousand receive cycles per GiB (an event, a
task switch, a message through every ASGI layer, a pause and a resume of the socket each),
about as much CPU as hashing the data once. Here the body is buffered up to BODY_MESSAGE
bytes before the application is woken, so a GiB takes about a thousand cycles. The end of the
body and a disconnection wake it at once, as before; memory per connection stays bounded by
one message.

The socket is read into one buffer of READ_BUFFER bytes that the connections of an event loop
share (each read is parsed before the next begins), not into a new bytes object per read: a
copy less, and reads as large as a message, which then needs no joining of pieces. The pieces
of a message read in several goes are joined once, into the bytes the message carries
(uvicorn's bytearray copies them twice: once as they arrive, once into the message).

Responses go out through a HeadHoldingTransport (glimpse_api.held_writes): a response's head
and its body in one write.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Final

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from glimpse_api.held_writes import HeadHoldingTransport

BODY_MESSAGE: Final = 1024 * 1024
READ_BUFFER: Final = BODY_MESSAGE + 64 * 1024  # a message and the next request's head

_loop_buffers = threading.local()  # one event loop runs in a thread at a time


def _read_buffer() -> memoryview:
    buffer: memoryview | None = getattr(_loop_buffers, "buffer", None)
    if buffer is None:
        buffer = _loop_buffers.buffer = memoryview(bytearray(READ_BUFFER))
    return buffer


class LargeBodyProtocol(HttpToolsProtocol):
    _pieces: list[bytes]
    _buffered: int

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        held = HeadHoldingTransport(transport, self.loop)
        super().connection_made(held)  # type: ignore[arg-type]  # a transport in all it is asked

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._pieces = []  # a disconnected request's are never delivered
        self._buffered = 0

    def on_body(self, body: bytes) -> None:
        cycle = self.cycle
        if cycle.response_complete or (self.parser.should_upgrade() and self._should_upgrade()):
            return
        self._pieces.append(body)
        self._buffered += len(body)
        if self._buffered >= BODY_MESSAGE:
            self._deliver()
            # The application resumes reading when it asks for the next message.
            self.flow.pause_reading()
            cycle.message_event.set()

    def on_message_complete(self) -> None:
        if self._pieces and not self.cycle.response_complete:
            self._deliver()
        super().on_message_complete()

    def _deliver(self) -> None:
        """The pieces buffered, appended to what the application has yet to receive."""
        cycle = self.cycle
        pending: list[bytes | bytearray] = [cycle.body] if cycle.body else []
        pending += self._pieces
        # bytes where uvicorn keeps a bytearray: its receive passes them on as they are
        # (bytes() of bytes is the same object), where it would copy a bytearray. The join of
        # a single piece is that piece.
        cycle.body = b"".join(pending)  # type: ignore[assignment]  # see above
        self._pieces = []
        self._buffered = 0


class LargeBodyConnection(asyncio.BufferedProtocol):
    """A LargeBodyProtocol fed from the event loop's shared read buffer. uvicorn makes one per
    connection with the arguments of its protocol class; the HTTP protocol itself is what
    uvicorn tracks, shuts down and, for a WebSocket, replaces on the transport."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, object],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.http = LargeBodyProtocol(config, server_state, app_state, _loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.http.connection_made(transport)  # type: ignore[arg-type]  # a stream transport

    def get_buffer(self, _sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        # Parsed at once: httptools copies out what it keeps (head, body pieces).
        self.http.data_received(_read_buffer()[:nbytes])  # type: ignore[arg-type]  # any buffer

    def eof_received(self) -> bool | None:
        self.http.eof_received()
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.http.connection_lost(exc)

    def pause_writing(self) -> None:
        self.http.pause_writing()

    def resume_writing(self) -> None:
        self.http.resume_writing()
