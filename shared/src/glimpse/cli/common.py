"""What every console entry point does first."""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
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
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(debug=settings.debug, json=settings.use_json)
    return settings


def prepare_multiprocess_metrics() -> None:
    """Give this process and the processes it forks or spawns a fresh metrics directory
    (removed at exit), unless the environment names one. Call before anything imports
    prometheus_client (glimpse.metrics): it chooses how to count when imported.

    The directories live in one folder of this user's, named by process id: a process killed,
    or ended by the signal it was stopped with (uvicorn re-raises SIGTERM), runs no exit
    handler, so each start also removes the directories of processes that are gone."""
    if os.environ.get(MULTIPROC_ENV):
        return
    directory = _metrics_directory()
    os.environ[MULTIPROC_ENV] = str(directory)
    atexit.register(shutil.rmtree, directory, ignore_errors=True)


def _metrics_directory() -> Path:
    base = Path(tempfile.gettempdir()) / f"glimpse-metrics-{os.getuid()}"
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
    except OSError:
        return Path(tempfile.mkdtemp(prefix="glimpse-metrics-"))
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        # Somebody else's, or a link: never write there.
        return Path(tempfile.mkdtemp(prefix="glimpse-metrics-"))
    for child in base.iterdir():
        if child.name.isdigit() and not _alive(int(child.name)):
            shutil.rmtree(child, ignore_errors=True)
    directory = base / str(os.getpid())
    shutil.rmtree(directory, ignore_errors=True)  # a dead process's, whose id came back
    directory.mkdir(mode=0o700)
    return directory


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
