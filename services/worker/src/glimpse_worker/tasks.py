"""Task shells: stable names, ids in, the work done in pipelines."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery
from celery import Task as CeleryTask

from glimpse.jobs import names
from glimpse_worker import runtime
from glimpse_worker.pipelines import import_


def ping() -> dict[str, Any]:
    """Proves a live worker consumes from the broker (used by health checks and tests)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def import_image(self: CeleryTask, task_id: str) -> None:
    """Run import task `task_id` on this process's loop (see glimpse_worker.pipelines)."""
    recheck = runtime.run(import_.run(runtime.current(), task_id))
    if recheck is not None:
        # Another worker's lease holds the task. A redelivered message (its worker died, or
        # only its pool process) comes back when that lease ends and takes the task over,
        # rather than waiting for the scrubber's requeue_pending.
        raise self.retry(countdown=recheck, max_retries=None)


def register(app: Celery) -> None:
    app.task(name=names.PING)(ping)
    # acks_late + reject_on_worker_lost: a worker that dies mid-import leaves the message to be
    # redelivered; the task's lease lets the next worker take over.
    app.task(name=names.IMPORT, bind=True, acks_late=True, reject_on_worker_lost=True)(import_image)
