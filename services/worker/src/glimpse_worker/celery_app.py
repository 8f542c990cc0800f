"""The Celery application, built from settings at the entry point."""

from __future__ import annotations

import gc
import logging
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    worker_before_create_process,
    worker_process_init,
    worker_process_shutdown,
    worker_shutdown,
)

from glimpse.config import Settings
from glimpse.jobs.broker import celery_config
from glimpse.logs import (
    LOG_FORMAT,
    add_context_filter,
    install_record_factory,
    quiet_libraries,
    use_format,
)
from glimpse_worker import runtime


def create_celery(settings: Settings) -> Celery:
    runtime.configure(settings)
    # Celery and billiard add handlers of their own in this format (the multiprocessing
    # logger's, stdout redirected to a logger): every record must carry the ids.
    install_record_factory()
    # The pool processes share the parent's imported modules (see _freeze_before_fork).
    worker_before_create_process.connect(_freeze_before_fork, weak=False)
    # Each pool process (or pool thread) builds its own loop, database pool and stores.
    worker_process_init.connect(_start_runtime, weak=False)
    worker_process_shutdown.connect(_stop_runtime, weak=False)
    # A threads pool's runtimes (one per thread) live in this process.
    worker_shutdown.connect(_stop_runtime, weak=False)
    # The API's line format, so a job's lines carry the ids of the request that made it.
    after_setup_logger.connect(_filter_handlers, weak=False)
    after_setup_task_logger.connect(_filter_handlers, weak=False)
    app = Celery("glimpse")
    app.conf.update(celery_config(settings))
    app.conf.update(worker_log_format=LOG_FORMAT, worker_task_log_format=LOG_FORMAT)
    # Registers the task shells on this app.
    from glimpse_worker import tasks  # noqa: PLC0415 -- tasks imports this module

    tasks.register(app)
    return app


def _freeze_before_fork(**_: Any) -> None:  # noqa: ANN401 -- Celery's signal arguments
    """In the parent, just before the prefork pool forks a process (Celery's hook for it).

    A pool process shares the parent's memory pages until one of them writes to a page. The
    cycle collector writes to every object it tracks, so its first full pass in either process
    would copy nearly all the pages of the modules the parent imported (the tasks and all
    they use, imported before the fork for that reason). Frozen objects it never visits again.
    """
    gc.collect()
    gc.freeze()


def _start_runtime(**_: Any) -> None:  # noqa: ANN401 -- Celery's signal arguments
    runtime.start()


def _stop_runtime(**_: Any) -> None:  # noqa: ANN401 -- Celery's signal arguments
    runtime.stop()


def _filter_handlers(logger: logging.Logger, **_: Any) -> None:  # noqa: ANN401 -- as above
    add_context_filter(logger.handlers)
    settings = runtime.configured_settings()
    use_format(logger.handlers, json=settings is not None and settings.use_json)
    quiet_libraries()  # Celery has just set the root level (DEBUG with `debug`)
