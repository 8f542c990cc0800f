"""The data a store write takes, watched: a failure of the data itself (not of the store) is
told apart, and data whose checks run elsewhere is held back at its last block until they
passed, so a store never completes an object of data that failed (its write fails instead,
leaving nothing).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator


class SourceFailed(Exception):
    """The data being written failed (not a store): the message is the data's own."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause) or type(cause).__name__)
        self.cause = cause


class Guarded:
    """`chunks` for one store's write, remembering the error the data raised itself (a driver
    may wrap what its data raised)."""

    def __init__(
        self, chunks: AsyncIterable[bytes], checked: asyncio.Future[None] | None = None
    ) -> None:
        self._chunks = chunks
        self._checked = checked
        self.error: SourceFailed | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            held: bytes | None = None
            async for chunk in self._chunks:
                self._refused()
                if self._checked is None:
                    yield chunk
                    continue
                if held is not None:
                    yield held
                held = chunk
            if self._checked is not None:
                # Never cancels the checks when this write is cancelled.
                await asyncio.wait([self._checked])
                self._refused()
            if held is not None:
                yield held
        except SourceFailed as exc:
            self.error = exc
            raise
        except Exception as exc:
            self.error = SourceFailed(exc)
            raise self.error from exc

    def _refused(self) -> None:
        """Raise what the checks raised, once they have."""
        checked = self._checked
        if checked is not None and checked.done():
            failure = checked.exception()
            if failure is not None:
                raise SourceFailed(failure)
