"""Helpers for tests that run the project's real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from celery import Celery
from sqlmodel import SQLModel

from glimpse.config import Settings
from glimpse.db import metadef_tables, tables
from glimpse.jobs.broker import celery_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

# Alembic's own bookkeeping: emptying it would make the next upgrade start from nothing.
MIGRATION_TABLES = frozenset({"alembic_version"})
# Importing these registers their tables on SQLModel's one metadata.
MODEL_MODULES = (tables, metadef_tables)


def data_tables() -> list[str]:
    """Every table the models declare, children before their parents (the order DELETE needs),
    so a new table is emptied between tests without a hand-kept list."""
    return [
        table.name
        for table in reversed(SQLModel.metadata.sorted_tables)
        if table.name not in MIGRATION_TABLES
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def command(name: str) -> str:
    return str(BIN / name)


def environment(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIMPSE_")}
    env.update(overrides)
    return env


def stop(process: subprocess.Popen[str], timeout: float = 20) -> tuple[int, str]:
    """SIGINT, then SIGKILL if it lingers; return the exit code and what it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=timeout)
    return process.returncode, output or ""


def terminate(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if it lingers (for servers whose output goes to a file)."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def celery_caller(settings: Settings) -> Iterator[Celery]:
    """A Celery app that sends to the workers of `settings`, its broker connections closed after."""
    app = Celery("glimpse-test")
    app.conf.update(celery_config(settings))
    try:
        yield app
    finally:
        # rpc:// and redis:// replies arrive on a consumer with a connection of its own.
        consumer = getattr(app.backend, "result_consumer", None)
        if consumer is not None:
            with contextlib.suppress(AttributeError):  # rpc's, never started: nothing open
                consumer.stop()
        app.pool.force_close_all()  # close() only drops the pool, its connections left open
        app.close()
