"""`glimpse-scrubber --check`: the health check of the daemon running beside it.

Healthy while the daemon keeps completing passes: it touches `[scrubber] heartbeat_file` after
each complete one, and a pass starts by reaching the database (a pass that cannot is CRITICAL
and leaves the file as it was). So a fresh file says the loop runs and the database answered
within the last `2 * wakeup_time + 60` seconds. The check imports only the settings: it runs
every few seconds beside the daemon.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Final

from glimpse.config import Settings

PASS_ALLOWANCE: Final = 60.0  # seconds a pass may take on top of two wakeup intervals


def heartbeat_age_limit(settings: Settings) -> float:
    return 2 * settings.scrubber.wakeup_time + PASS_ALLOWANCE


def beat(path: Path) -> None:
    """Record a complete pass (the file's modification time); raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def check(settings: Settings) -> int:
    """0 if healthy, else 1 with the reason on stderr."""
    path = settings.scrubber.heartbeat_file
    limit = heartbeat_age_limit(settings)
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        reason = f"no pass completed yet ({path} does not exist)"
    else:
        if age <= limit:
            return 0
        reason = f"the last complete pass ended {age:.0f}s ago (limit {limit:.0f}s)"
    print(f"glimpse-scrubber: {reason}", file=sys.stderr)  # noqa: T201 -- the check's answer
    return 1
