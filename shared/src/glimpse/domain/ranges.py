"""RFC 7233 `Range` header parsing for image downloads (single byte ranges)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from glimpse.domain.errors import InvalidInput, RangeNotSatisfiable


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
    """The single byte range a `Range` header asks for (None without a header).

    As Glance does: several ranges are refused (400), a header that is not a byte range is
    unsatisfiable (416)."""
    if header is None:
        return None
    if "," in header:
        raise InvalidInput(
            "Requests with multiple ranges are not supported. "
            "Make several single-range requests instead."
        )
    match = _RANGE_RE.match(header)
    if match is None:
        raise RangeNotSatisfiable(None, "Invalid Range header.")
    first, last = match.groups()
    if first and last:
        start, end = int(first), int(last)
        if start > end:
            raise RangeNotSatisfiable(None, "Invalid Range header.")
        return Range(start, end)
    if first:
        return Offset(int(first))
    if last:
        return Suffix(int(last))
    raise RangeNotSatisfiable(None, "Invalid Range header.")
