"""uvicorn's httptools protocol with a larger request-body buffer.

uvicorn stops reading a connection once 64 KiB of body wait for the application, and resumes
when the application asks for more: an image upload then costs one pause, one resume and one
trip through the ASGI stack for every socket read (a few hundred KiB at most), thousands per
GiB, and that per-chunk work, not the data itself, is most of what the event loop spends on an
upload. Letting BODY_BUFFER bytes wait hands the application chunks of about that size instead,
while still bounding what one connection can hold in memory.
"""

from __future__ import annotations

from typing import Final

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

BODY_BUFFER: Final = 1024 * 1024


class LargeBodyHttpToolsProtocol(HttpToolsProtocol):
    # The same steps as HttpToolsProtocol.on_body (uvicorn is pinned in uv.lock), with only
    # the limit changed.
    def on_body(self, body: bytes) -> None:
        upgrading = self.parser.should_upgrade() and self._should_upgrade()
        if upgrading or self.cycle.response_complete:
            return
        self.cycle.body += body
        if len(self.cycle.body) > BODY_BUFFER:
            self.flow.pause_reading()
        self.cycle.message_event.set()
