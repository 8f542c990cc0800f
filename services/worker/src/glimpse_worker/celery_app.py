"""The Celery application, built from settings at the entry point."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

from glimpse.config import Settings
from glimpse.jobs.broker import celery_config
from glimpse_worker import runtime


def create_celery(settings: Settings) -> Celery:
    runtime.configure(settings)
    # Each pool process builds its own loop, database pool and stores after the fork.
    worker_process_init.connect(_start_runtime, weak=False)
    worker_process_shutdown.connect(_stop_runtime, weak=False)
    app = Celery("glimpse")
    app.conf.update(celery_config(settings))
    # Registers the task shells on this app.
    from glimpse_worker import tasks  # noqa: PLC0415

    tasks.register(app)
    return app


def _start_runtime(**_: Any) -> None:  # noqa: ANN401 -- Celery's signal arguments
    runtime.start()


def _stop_runtime(**_: Any) -> None:  # noqa: ANN401 -- Celery's signal arguments
    runtime.stop()
