"""Logging set-up shared by every entry point."""

from __future__ import annotations

import logging
import os


def setup_logging() -> None:
    level = os.environ.get("GLIMPSE_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
