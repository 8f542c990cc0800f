"""Celery broker and result settings derived from `[celery]`.

`filesystem://` (the embedded default) needs no server: kombu passes messages through a folder,
and results land in another, so a single machine runs the whole topology. Production uses Redis
or RabbitMQ (`amqp://`).
"""

from __future__ import annotations

from typing import Any, Final

from glimpse.config import Settings

AMQP_SCHEMES: Final = ("amqp://", "amqps://", "pyamqp://")
# How often a filesystem:// consumer looks for messages. kombu's default (1 s) made every job
# wait half a second on average before a worker took it; listing the queue folder 20 times a
# second costs the worker next to nothing.
FILESYSTEM_POLL_SECONDS: Final = 0.05


def celery_config(settings: Settings) -> dict[str, Any]:
    options = settings.celery
    config: dict[str, Any] = {
        "broker_url": options.broker_url,
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "broker_connection_retry_on_startup": True,
        "task_serializer": "json",
        "accept_content": ["json"],
    }
    if options.broker_url.startswith("filesystem://"):
        queue = options.broker_data_dir / "queue"
        processed = options.broker_data_dir / "processed"
        results = options.broker_data_dir / "results"
        # Exchange tables (for broadcasts such as `inspect ping`) must be shared by every process
        # whatever its working directory.
        control = options.broker_data_dir / "control"
        for folder in (queue, processed, results, control):
            folder.mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
            "store_processed": False,
            "control_folder": str(control),
            "polling_interval": FILESYSTEM_POLL_SECONDS,
        }
        config["result_backend"] = f"file://{results.resolve()}"
    elif options.broker_url.startswith(AMQP_SCHEMES):
        # RabbitMQ redelivers an unacknowledged message as soon as its consumer's connection
        # drops, so there is no visibility timeout. Celery has no amqp:// result backend any
        # more; its replies travel as RPC messages on the same broker.
        config["result_backend"] = options.result_backend or "rpc://"
    else:
        # Redis and SQS only: how long an unacknowledged message (its worker died) stays hidden.
        config["broker_transport_options"] = {"visibility_timeout": options.visibility_timeout}
        config["result_backend"] = options.result_backend or options.broker_url
    return config
