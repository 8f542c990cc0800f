"""Whether this API node takes traffic: oslo.middleware's healthcheck with its disable_by_file
backend, as Glance's paste pipeline serves it. Cheap by design (one stat, no database): a load
balancer asks every few seconds."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Final

from glimpse.config import Settings

OK: Final = "OK"
DISABLED_BY_FILE: Final = "DISABLED BY FILE"
SHUTTING_DOWN: Final = "SHUTTING DOWN"

# Set once in this process when it was asked to stop (SIGTERM): from then on it drains.
_draining = threading.Event()


def start_draining() -> None:
    """This process stops soon: its health check fails from now on, its responses close their
    connections, so a balancer sends the next requests elsewhere."""
    _draining.set()


def draining() -> bool:
    return _draining.is_set()


@dataclass(frozen=True, slots=True)
class Health:
    available: bool
    reason: str


class HealthService:
    def __init__(self, settings: Settings) -> None:
        self.disable_file = settings.healthcheck.disable_by_file_path

    def check(self) -> Health:
        """Unavailable while this process drains before it stops, and while `[healthcheck]
        disable_by_file_path` exists (a node an operator drains)."""
        if draining():
            return Health(available=False, reason=SHUTTING_DOWN)
        if self.disable_file is not None and self.disable_file.exists():
            return Health(available=False, reason=DISABLED_BY_FILE)
        return Health(available=True, reason=OK)
