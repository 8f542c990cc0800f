"""RFC 7233 `Range` header parsing for image downloads (single byte ranges)."""

from __future__ import annotations

import re
from typing import Final

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Range:
    """Bytes first..last inclusive, as in `Range: bytes=first-last`."""

    first: int
    last: int


@dataclass(frozen=True, slots=True)
class Offset:
    """From `first` to the end: `bytes=first-`."""

    first: int


@dataclass(frozen=True, slots=True)
class Suffix:
    """The last `length` bytes: `bytes=-length`."""

    length: int


ByteRange = Range | Offset | Suffix


@dataclass(frozen=True, slots=True)
class ResolvedRange:
    """A byte range made concrete against an object's size: [start, stop)."""

    start: int
    stop: int

    @property
    def length(self) -> int:
        return self.stop - self.start


def resolve(byte_range: ByteRange, size: int) -> ResolvedRange | None:
    """The concrete span of `byte_range` in an object of `size` bytes; None if unsatisfiable."""
    match byte_range:
        case Range(first, last):
            if first >= size or last < first:
                return None
            return ResolvedRange(first, min(last, size - 1) + 1)
        case Offset(first):
            return ResolvedRange(first, size) if first < size else None
        case Suffix(length):
            if length <= 0 or size == 0:
                return None
            return ResolvedRange(max(size - length, 0), size)


_RANGE_RE: Final = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def parse_range(header: str | None) -> ByteRange | None:
    """The byte range a `Range` header asks for; None when there is none or it is not one
    single byte range (RFC 7233 says to ignore such a header and send the whole image)."""
    if header is None:
        return None
    match = _RANGE_RE.match(header)
    if match is None:
        return None
    first, last = match.groups()
    if first and last:
        start, end = int(first), int(last)
        return Range(start, end) if start <= end else None
    if first:
        return Offset(int(first))
    if last:
        return Suffix(int(last))
    return None
