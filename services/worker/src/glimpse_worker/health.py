"""`glimpse-worker --ping`: the health check of the worker running beside it.

A control ping (Celery's pidbox, through the broker) addressed to this host's worker node
only: it answers while its consumer loop runs and reaches the broker. Imports only Celery and
the broker settings: it runs every few seconds.
"""

from __future__ import annotations

import socket
import sys
from typing import Final

from celery import Celery

from glimpse.config import Settings
from glimpse.jobs.broker import celery_config

PING_TIMEOUT: Final = 5.0  # seconds: a live worker answers within milliseconds


def node_name() -> str:
    """The worker's node name on this host (the worker starts with it, the ping targets it)."""
    return f"celery@{socket.gethostname()}"


def ping(settings: Settings, node: str | None = None) -> int:
    """0 if the worker node `node` (default: this host's) answered, else 1 with the reason on
    stderr."""
    app = Celery("glimpse-ping")
    app.conf.update(celery_config(settings))
    node = node or node_name()
    try:
        replies = app.control.ping(destination=[node], timeout=PING_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 -- any broker failure is an unhealthy answer
        print(f"glimpse-worker: ping of {node} failed: {exc!r}", file=sys.stderr)
        return 1
    finally:
        app.pool.force_close_all()
        app.close()
    if any(reply.get(node, {}).get("ok") == "pong" for reply in replies):
        return 0
    print(f"glimpse-worker: {node} did not answer", file=sys.stderr)
    return 1
