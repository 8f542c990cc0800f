"""Helpers for tests that run the project's real processes."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import redis
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


# Databases the tests take whole (and flush) from the machine's Redis: 0 holds the claims below,
# 15 is the keystone tests' token cache.
REDIS_TEST_DATABASES = range(1, 15)
REDIS_CLAIM_SECONDS = 3 * 3600  # a claim a killed run leaves behind lapses by itself
REDIS_CLAIM_WAIT = 300.0
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end"


@contextlib.contextmanager
def claimed_redis_db(server_url: str) -> Iterator[str]:
    """The URL of a database of `server_url`'s Redis (1-14) that no other test holds meanwhile,
    flushed before and after: pytest-xdist's workers, and other test runs on the machine, run
    broker tests at the same time, and one's flush must not empty another's queues. The claim is
    an atomic SET NX in database 0, released on exit."""
    claims = redis.Redis.from_url(f"{server_url}/0", socket_timeout=10)
    owner = uuid.uuid4().hex
    deadline = time.monotonic() + REDIS_CLAIM_WAIT
    try:
        index = None
        while index is None:
            for candidate in random.sample(REDIS_TEST_DATABASES, len(REDIS_TEST_DATABASES)):
                key = f"glimpse-test:redis-db:{candidate}"
                if claims.set(key, owner, nx=True, ex=REDIS_CLAIM_SECONDS):
                    index = candidate
                    break
            else:
                assert time.monotonic() < deadline, "every Redis test database stays claimed"
                time.sleep(0.5)
        url = f"{server_url}/{index}"
        database = redis.Redis.from_url(url, socket_timeout=10)
        try:
            database.flushdb()
            yield url
            database.flushdb()
        finally:
            database.close()
            claims.eval(_RELEASE, 1, key, owner)
    finally:
        claims.close()


def broker_connections(broker_url: str) -> int:
    """Clients of the Redis database `broker_url` names, other than the one asking."""
    client = redis.Redis.from_url(broker_url)
    try:
        database = client.connection_pool.connection_kwargs["db"]
        me = client.client_id()
        return sum(
            1 for c in client.client_list() if int(c["db"]) == database and int(c["id"]) != me
        )
    finally:
        client.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def image_bytes(size: int) -> bytes:
    """`size` random bytes that no format inspector takes for a disk image. Random data carries
    an MBR's signature (0x55AA at offset 510) once in 65,536 images, and an image that looks
    like a GPT disk whose partition table fails the safety checks is refused with 415, as Glance
    refuses it: a test uploading many random images would fail now and then."""
    data = bytearray(os.urandom(size))
    if size >= 512:
        data[510:512] = b"\0\0"
    return bytes(data)


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


def assert_unavailable(response: httpx.Response) -> None:
    """The answer while the database is down: 503 in Glance's error format, with Retry-After."""
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == "10"
    assert response.json() == {
        "message": "The database is unavailable; try again later.",
        "code": "503 Service Unavailable",
        "title": "Service Unavailable",
    }
