"""When an import lock may be taken over (lock_is_stale)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from glimpse.domain.tasks import IMPORT_LOCK_EXPIRY, lock_is_stale

NOW = datetime(2026, 1, 1, 12, 0, 0)  # noqa: DTZ001 -- tasks keep naive UTC times
HOUR = IMPORT_LOCK_EXPIRY


@pytest.mark.parametrize(
    ("status", "last_update", "lease_until", "stale"),
    [
        (None, None, None, True),  # the task is gone
        ("pending", NOW - HOUR, None, False),
        ("pending", NOW - 2 * HOUR, None, True),
        ("pending", None, None, True),
        ("processing", NOW - HOUR + timedelta(seconds=1), None, False),
        ("processing", NOW - HOUR, None, True),
        ("processing", NOW - HOUR, NOW - timedelta(seconds=1), True),
        ("processing", NOW - 5 * HOUR, NOW + timedelta(seconds=1), False),  # lease renewed
        ("success", NOW - HOUR, None, True),
        ("failure", NOW - timedelta(minutes=5), None, False),
    ],
)
def test_lock_is_stale(
    status: str | None,
    last_update: datetime | None,
    lease_until: datetime | None,
    stale: bool,
) -> None:
    assert lock_is_stale(status, last_update, lease_until, NOW) is stale
