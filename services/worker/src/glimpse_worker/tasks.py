"""Task shells: stable names, ids in, the work done in pipelines."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery

from glimpse.jobs import names
from glimpse_worker import runtime
from glimpse_worker.pipelines import import_


def ping() -> dict[str, Any]:
    """Proves a live worker consumes from the broker (used by health checks and tests)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def import_image(task_id: str) -> None:
    """Run import task `task_id` on this process's loop (see glimpse_worker.pipelines)."""
    runtime.run(import_.run(runtime.context(), task_id))


def register(app: Celery) -> None:
    app.task(name=names.PING)(ping)
    # acks_late + reject_on_worker_lost: a worker that dies mid-import leaves the message to be
    # redelivered; the task's lease lets the next worker take over.
    app.task(name=names.IMPORT, acks_late=True, reject_on_worker_lost=True)(import_image)
