"""uvicorn's httptools protocol, handing request bodies to the application in large messages.

uvicorn wakes the application for every read from the socket and stops reading past 64 KiB
buffered: an image upload then costs some sixteen thousand receive cycles per GiB (an event, a
task switch, a message through every ASGI layer, a pause and a resume of the socket each),
about as much CPU as hashing the data once. Here the body is buffered up to BODY_MESSAGE
bytes before the application is woken, so a GiB takes about a thousand cycles. The end of the
body and a disconnection wake it at once, as before; memory per connection stays bounded by
one message and one read.

The pieces read are joined once, into the bytes the message carries (uvicorn's bytearray
copies them twice: once as they arrive, once into the message).
"""

from __future__ import annotations

from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_MESSAGE: Final = 1024 * 1024


class LargeBodyProtocol(HttpToolsProtocol):
    _pieces: list[bytes]
    _buffered: int

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
        # (bytes() of bytes is the same object), where it would copy a bytearray.
        cycle.body = b"".join(pending)  # type: ignore[assignment]  # see above
        self._pieces = []
        self._buffered = 0
