"""The times of an image's view: Glance's `%Y-%m-%dT%H:%M:%SZ`, whichever way they are written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from glimpse_api.schemas.images import format_time


@pytest.mark.parametrize(
    "value",
    [
        datetime(2026, 1, 2, 3, 4, 5),  # noqa: DTZ001 -- naive UTC, as stored
        datetime(2026, 12, 31, 23, 59, 59, 999999),  # noqa: DTZ001 -- microseconds dropped
        datetime(1000, 1, 1),  # noqa: DTZ001 -- the first year of four digits
        datetime(999, 12, 31, 1, 2, 3),  # noqa: DTZ001 -- strftime pads no shorter year
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ],
)
def test_a_time_is_written_as_strftime_writes_it(value: datetime) -> None:
    assert format_time(value) == value.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_no_time_is_null() -> None:
    assert format_time(None) is None
