"""Range header parsing and resolution (RFC 7233 single byte ranges)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from glimpse.domain.errors import InvalidInput, RangeNotSatisfiable
from glimpse.domain.ranges import Offset, Range, ResolvedRange, Suffix, parse_range, resolve


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", Range(0, 9)),
        ("bytes=5-", Offset(5)),
        ("bytes=-3", Suffix(3)),
        (" bytes = 1 - 2 ", Range(1, 2)),
        ("BYTES=0-0", Range(0, 0)),
    ],
)
def test_parse(header: str | None, expected: object) -> None:
    assert parse_range(header) == expected


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=4-2", "items=0-1", "bytes=-", "bytes"])
def test_unparsable_is_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header)


def test_several_ranges_are_refused() -> None:
    with pytest.raises(InvalidInput):
        parse_range("bytes=0-1,3-4")


@given(size=st.integers(1, 10_000), first=st.integers(0, 20_000), length=st.integers(0, 20_000))
def test_resolved_ranges_stay_inside_the_object(size: int, first: int, length: int) -> None:
    for byte_range in (Range(first, first + length), Offset(first), Suffix(length)):
        span = resolve(byte_range, size)
        if span is None:
            continue
        assert 0 <= span.start < span.stop <= size
        assert span.length == span.stop - span.start


@given(size=st.integers(1, 10_000), first=st.integers(0, 10_000), last=st.integers(0, 10_000))
def test_range_semantics(size: int, first: int, last: int) -> None:
    span = resolve(Range(first, last), size)
    if first >= size or last < first:
        assert span is None
    else:
        assert span == ResolvedRange(first, min(last, size - 1) + 1)


def test_suffix_and_offset_edges() -> None:
    assert resolve(Suffix(20), 10) == ResolvedRange(0, 10)
    assert resolve(Suffix(0), 10) is None
    assert resolve(Suffix(3), 0) is None
    assert resolve(Offset(10), 10) is None
    assert resolve(Offset(9), 10) == ResolvedRange(9, 10)
