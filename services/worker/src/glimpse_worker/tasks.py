"""Task shells: stable names, ids in, the work done in pipelines."""

from __future__ import annotations

import os
import socket
from typing import Any

from celery import Celery

from glimpse.jobs import names


def ping() -> dict[str, Any]:
    """Proves a live worker consumes from the broker (used by health checks and tests)."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def register(app: Celery) -> None:
    app.task(name=names.PING)(ping)
