"""Options of the processes' infrastructure: `[database]`, `[celery]`, `[scrubber]`,
`[healthcheck]` and `[metrics]`."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from glimpse.config.notation import GlanceList, Network


class DatabaseOptions(BaseModel):
    connection: str = Field(
        "sqlite:///data/glimpse.sqlite",
        description=(
            "SQLAlchemy URL of the database. sqlite:// and postgresql:// URLs (also "
            "postgresql+psycopg2://) are served by their asyncio drivers."
        ),
    )
    max_pool_size: int = Field(10, ge=1, description="Connections kept open per process.")
    pool_timeout: float = Field(
        30,
        gt=0,
        description=(
            "Seconds a request waits for a free pooled connection before it fails with 503 "
            "(PostgreSQL; SQLite waits for its busy timeout)."
        ),
    )
    command_timeout: float = Field(
        30,
        gt=0,
        description=(
            "Seconds a PostgreSQL statement, or opening a connection, may take before the "
            "request fails with 503 (a database that hangs); its transaction is rolled back."
        ),
    )


class CeleryOptions(BaseModel):
    broker_url: str = Field(
        "filesystem://",
        description=(
            "Celery broker. filesystem:// needs no server (single machine); use "
            "redis://host:6379/0 or amqp://... in production."
        ),
    )
    broker_data_dir: Path = Field(
        Path("data/broker"), description="Message folder of the filesystem:// broker."
    )
    result_backend: str | None = Field(
        None, description="Celery result backend; defaults to the broker (or a folder)."
    )
    worker_concurrency: int = Field(2, ge=1, description="Jobs one glimpse-worker runs at once.")
    worker_pool: Literal["threads", "prefork"] = Field(
        "threads",
        description=(
            "How a glimpse-worker runs its jobs: threads of its own process (jobs wait on disks, "
            "the network and qemu-img, and hash outside the interpreter lock), or prefork: a "
            "process per job slot, forked from it, each about 20 MiB more, so that one dying "
            "(the OOM killer) takes only its own job down."
        ),
    )
    cache_notice_exchange: str = Field(
        "glimpse.cache",
        min_length=1,
        description=(
            "Broker exchange on which API nodes tell each other to act on their image cache at "
            "once (queued, deleted or cleared images). Every node of one deployment must use "
            "the same name; deployments sharing a broker (one Redis database, one RabbitMQ "
            "virtual host) need different names."
        ),
    )
    visibility_timeout: int = Field(
        3600,
        ge=1,
        description=(
            "Seconds a message taken by a worker stays invisible on a Redis or SQS broker "
            "before the broker hands it out again. Imports acknowledge their message only when "
            "done, so the message of a worker killed mid-import comes back after this. Keep it "
            "above [task] lease_time: a message that comes back while the dead worker's lease "
            "holds is dropped as a duplicate, and the task is then re-sent by the scrubber's "
            "requeue_pending once the lease runs out."
        ),
    )


class ScrubberOptions(BaseModel):
    wakeup_time: int = Field(
        300,
        ge=1,
        description=(
            "Seconds between scrubber passes (daemon mode). When unset here, [DEFAULT] "
            "wakeup_time (where glance-scrubber.conf has it) applies."
        ),
    )
    heartbeat_file: Path = Field(
        Path("data/scrubber.heartbeat"),
        description=(
            "File the daemon touches after each complete pass; glimpse-scrubber --check reads "
            "its age. Give every scrubber process its own."
        ),
    )
    lease_time: int = Field(
        600,
        ge=1,
        description=(
            "Seconds a claimed deletion, or an upload's hold on its saving image (renewed every "
            "third of it while the upload lasts), stays with the process that made it; after "
            "that the process is presumed dead: a scrubber takes the deletion over, and "
            "housekeeping puts the image back to queued."
        ),
    )
    deletion_retry_initial: int = Field(
        60,
        ge=1,
        description=(
            "Seconds before data that could not be deleted (its store down or no longer "
            "enabled, an http location) is tried again; the wait doubles with each failure."
        ),
    )
    deletion_retry_max: int = Field(
        3600, ge=1, description="Longest wait between two attempts to delete the same data."
    )


class HealthcheckOptions(BaseModel):
    """`[healthcheck]`: GET /healthcheck, as oslo.middleware's disable_by_file backend."""

    disable_by_file_path: Path | None = Field(
        None,
        description=(
            "While this file exists GET /healthcheck answers 503 DISABLED BY FILE, so a load "
            "balancer drains this node before it is stopped."
        ),
    )
    drain_delay: float = Field(
        0,
        ge=0,
        le=3600,
        description=(
            "Seconds glimpse-api keeps serving after SIGTERM before it stops accepting: "
            "meanwhile GET /healthcheck answers 503 SHUTTING DOWN and every response closes "
            "its connection, so a load balancer takes the node out first. Set it above the "
            "balancer's check interval times its fall count; 0 stops accepting at once."
        ),
    )


_PRIVATE_NETWORKS = (
    "127.0.0.0/8",
    "::1",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
)


class MetricsOptions(BaseModel):
    """`[metrics]`: Prometheus metrics of the API (/metrics), the worker and the scrubber."""

    enabled: bool = Field(
        default=True, description="Serve metrics: the API on /metrics, the others on `port`."
    )
    allowed_networks: GlanceList[Network] = Field(
        default_factory=lambda: [ipaddress.ip_network(n) for n in _PRIVATE_NETWORKS],
        description=(
            "Peers (addresses or CIDR networks) the API's /metrics answers; others get 404. "
            "A balancer in front of the API should refuse /metrics itself: behind it every "
            "request comes from the balancer's address."
        ),
    )
    bind_host: str = Field(
        "127.0.0.1", description="Address the worker's and the scrubber's metrics server use."
    )
    port: int = Field(
        0,
        ge=0,
        le=65535,
        description=(
            "Port of the metrics server of glimpse-worker and glimpse-scrubber (GET /metrics); "
            "0 starts none. Each process on one host needs its own."
        ),
    )
