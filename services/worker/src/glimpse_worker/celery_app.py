"""The Celery application, built from settings at the entry point."""

from __future__ import annotations

from celery import Celery

from glimpse.config import Settings
from glimpse.jobs.broker import celery_config


def create_celery(settings: Settings) -> Celery:
    app = Celery("glimpse")
    app.conf.update(celery_config(settings))
    # Registers the task shells on this app.
    from glimpse_worker import tasks  # noqa: PLC0415

    tasks.register(app)
    return app
