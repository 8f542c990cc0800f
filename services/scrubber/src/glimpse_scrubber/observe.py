"""The scrubber's metrics: what waits for it, read from the database after each pass, and
served at `[metrics] port` (GET /metrics)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime

import sqlalchemy as sa

from glimpse import metrics
from glimpse.db.core import table_of
from glimpse.db.tables import Image, ImageKeyCleanup, ImageLocation, utcnow
from glimpse.domain.images import LocationStatus
from glimpse_scrubber.jobs import ScrubberRuntime

log = logging.getLogger("glimpse_scrubber")

_LOCS = table_of(ImageLocation)
_IMAGES = table_of(Image)
_KEYS = table_of(ImageKeyCleanup)
Row = tuple[str, str, dict[str, str], float]


class Figures:
    """The latest figures (a pass writes them, the metrics server's thread reads them)."""

    def __init__(self) -> None:
        self._rows: list[Row] = []
        self._lock = threading.Lock()

    def set(self, rows: list[Row]) -> None:
        with self._lock:
            self._rows = rows

    def rows(self) -> list[Row]:
        with self._lock:
            return list(self._rows)


def _age(now: datetime, since: datetime | None) -> float:
    return max((now - since).total_seconds(), 0.0) if since is not None else 0.0


async def measure(runtime: ScrubberRuntime) -> list[Row]:
    now = utcnow()
    waiting = _LOCS.c.status.in_([LocationStatus.PENDING_DELETE, LocationStatus.DELETING])
    async with runtime.database.read() as session:
        locations, oldest = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(_LOCS.c.updated_at)).where(waiting)
            )
        ).one()
        deleted_at = (
            await session.execute(
                sa.select(sa.func.min(_IMAGES.c.deleted_at))
                .select_from(_LOCS.join(_IMAGES, _LOCS.c.image_id == _IMAGES.c.id))
                .where(waiting)
            )
        ).scalar_one()
        keys, oldest_key = (
            await session.execute(
                sa.select(sa.func.count(), sa.func.min(_KEYS.c.created_at)).where(
                    _KEYS.c.status == "pending"
                )
            )
        ).one()
    lag = max(_age(now, deleted_at) - runtime.settings.scrub_time, 0.0)
    return [
        ("glimpse_pending_deletes", "Image data locations waiting to be deleted.", {}, locations),
        (
            "glimpse_pending_delete_oldest_age_seconds",
            "Age of the oldest location waiting to be deleted.",
            {},
            _age(now, oldest),
        ),
        (
            "glimpse_scrubber_lag_seconds",
            "How long past its scrub_time the oldest waiting deletion is.",
            {},
            lag,
        ),
        ("glimpse_key_cleanups_pending", "Encryption keys waiting to be deleted.", {}, keys),
        (
            "glimpse_key_cleanup_oldest_age_seconds",
            "Age of the oldest key cleanup waiting.",
            {},
            _age(now, oldest_key),
        ),
        (
            "glimpse_scrubber_last_pass_timestamp_seconds",
            "When this scrubber last completed a pass (Unix time).",
            {},
            time.time(),
        ),
    ]


def serve(runtime: ScrubberRuntime, figures: Figures) -> None:
    options = runtime.settings.metrics
    if options.enabled and options.port:
        metrics.serve(options.bind_host, options.port, metrics.GaugesCollector(figures.rows))
        log.info("metrics on http://%s:%d/metrics", options.bind_host, options.port)
