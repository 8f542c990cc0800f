"""Prometheus metrics of every service (prometheus-client), and how they are served.

Processes that fork or spawn workers (glimpse-api with `workers` > 1, glimpse-worker's prefork
pool) count in prometheus-client's multiprocess mode: glimpse.cli.common's
`prepare_multiprocess_metrics()` gives the process tree a fresh directory before
prometheus_client is imported, and `render()` then sums what every process of it wrote there.
The scrubber's figures are read from the database after each pass; the queue depth from the
broker at each scrape.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import REGISTRY, Collector

from glimpse.cli.common import MULTIPROC_ENV

CONTENT_TYPE: Final = CONTENT_TYPE_LATEST
SECOND_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
JOB_BUCKETS: Final = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 10800)

# -- the API --------------------------------------------------------------------------------
REQUESTS = Counter(
    "glimpse_api_requests",
    "Requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "glimpse_api_request_duration_seconds",
    "Time from a request's arrival to the end of its response body, by method and route.",
    ["method", "route"],
    buckets=SECOND_BUCKETS,
)
BODY_BYTES_RECEIVED = Counter(
    "glimpse_api_received_bytes",
    "Request body bytes received, by route (image uploads: PUT .../file and .../stage).",
    ["route"],
)
BODY_BYTES_SENT = Counter(
    "glimpse_api_sent_bytes",
    "Response body bytes sent, by route (image downloads: GET .../file).",
    ["route"],
)
UPLOADS_IN_FLIGHT = Gauge(
    "glimpse_api_uploads_in_flight",
    "Image uploads and stagings being received now.",
    multiprocess_mode="livesum",
)

# -- the worker -------------------------------------------------------------------------------
IMPORT_JOBS = Counter(
    "glimpse_import_jobs",
    "Import jobs run to an end, by import method and outcome (success, failure).",
    ["method", "outcome"],
)
IMPORT_SECONDS = Histogram(
    "glimpse_import_duration_seconds",
    "Time an import job ran on a worker, by method and outcome.",
    ["method", "outcome"],
    buckets=JOB_BUCKETS,
)
IMPORT_BYTES = Counter(
    "glimpse_import_bytes", "Image bytes written to the stores by import jobs.", ["method"]
)


def render() -> tuple[bytes, str]:
    """This process's metrics (its whole tree's in multiprocess mode) in the text format."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped library
        return generate_latest(registry), CONTENT_TYPE
    return generate_latest(REGISTRY), CONTENT_TYPE


def process_exited(pid: int) -> None:
    """Forget the live gauges of a pool process that exited (multiprocess mode)."""
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped library


class GaugesCollector(Collector):
    """Gauges computed when scraped: `read()` returns (name, help, labels, value) rows."""

    def __init__(
        self, read: Callable[[], Iterable[tuple[str, str, dict[str, str], float]]]
    ) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        families: dict[str, GaugeMetricFamily] = {}
        for name, text, labels, value in self.read():
            family = families.get(name)
            if family is None:
                family = families[name] = GaugeMetricFamily(name, text, labels=list(labels))
            family.add_metric(list(labels.values()), value)
        return list(families.values())


def serve(host: str, port: int, *collectors: Collector) -> None:
    """An HTTP server (a thread) answering GET /metrics on host:port with this process's metrics
    (its tree's in multiprocess mode) and `collectors`."""
    from prometheus_client import start_http_server  # noqa: PLC0415 -- only where served

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped library
    for collector in collectors:
        registry.register(collector)
    start_http_server(port, addr=host, registry=registry)
