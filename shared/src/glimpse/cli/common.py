"""What every console entry point does first."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from typing import Final

from glimpse.config import ConfigError, Settings, load_settings
from glimpse.logs import setup_logging

# prometheus-client's multiprocess mode: the directory every process of a tree counts in.
MULTIPROC_ENV: Final = "PROMETHEUS_MULTIPROC_DIR"


def settings_or_exit(prog: str, config_file: str | os.PathLike[str] | None) -> Settings:
    """Set up logging and build the settings; a bad configuration ends the process with 2."""
    setup_logging()
    try:
        settings = load_settings(config_file)
    except ConfigError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)  # noqa: T201 -- start-up failure
        raise SystemExit(2) from None
    setup_logging(debug=settings.debug, json=settings.use_json)
    return settings


def prepare_multiprocess_metrics() -> None:
    """Give this process and the processes it forks or spawns a fresh metrics directory
    (removed at exit), unless the environment names one. Call before anything imports
    prometheus_client (glimpse.metrics): it chooses how to count when imported."""
    if os.environ.get(MULTIPROC_ENV):
        return
    directory = tempfile.mkdtemp(prefix="glimpse-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
