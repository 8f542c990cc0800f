"""The worker's metrics server: the job counters of every pool process (multiprocess mode)
and the depth of the job queue, read from the broker at each scrape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from celery import Celery

from glimpse import metrics
from glimpse.config import Settings
from glimpse.jobs.broker import celery_config

log = logging.getLogger(__name__)


def queue_depth(settings: Settings) -> Iterator[tuple[str, str, dict[str, str], float]]:
    """Messages waiting in the job queue (not those a worker holds)."""
    app = Celery("glimpse-metrics")
    app.conf.update(celery_config(settings))
    queue = app.conf.task_default_queue
    try:
        with app.connection_for_read() as connection:
            connection.ensure_connection(max_retries=1, timeout=5)
            try:
                _, waiting, _ = connection.default_channel.queue_declare(queue=queue, passive=True)
            except connection.channel_errors:
                waiting = 0  # a queue no one declared yet holds nothing
    except Exception:
        log.warning("metrics: the broker does not answer", exc_info=True)
        return
    finally:
        app.close()
    yield (
        "glimpse_queue_messages",
        "Job messages waiting in the queue.",
        {"queue": queue},
        waiting,
    )


def serve(settings: Settings) -> None:
    options = settings.metrics
    if options.enabled and options.port:
        metrics.serve(
            options.bind_host, options.port, metrics.GaugesCollector(lambda: queue_depth(settings))
        )
        log.info("metrics on http://%s:%d/metrics", options.bind_host, options.port)
