"""A real glimpse-worker process consuming from the Redis broker on this machine."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from glimpse.config import load_settings
from glimpse.jobs import names
from glimpse.jobs.broker import celery_config
from support import command, environment, stop

REDIS_URL = "redis://127.0.0.1:6379"


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=3).ping())
    except redis.RedisError:
        return False


@pytest.fixture
def redis_db() -> Iterator[str]:
    if not _redis_answers():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("Redis is required under CI=true and does not answer on 127.0.0.1:6379")
        pytest.skip("Redis does not answer on 127.0.0.1:6379")
    index = 1 + uuid.uuid4().int % 14
    client = redis.Redis.from_url(f"{REDIS_URL}/{index}")
    client.flushdb()
    yield f"{REDIS_URL}/{index}"
    client.flushdb()
    client.close()


def test_worker_answers_over_redis(redis_db: str, tmp_path: Path) -> None:
    env = environment(
        GLIMPSE_CELERY__BROKER_URL=redis_db,
        GLIMPSE_DATABASE__CONNECTION=f"sqlite:///{tmp_path / 'w.sqlite'}",
        GLIMPSE_CELERY__WORKER_CONCURRENCY="1",
    )
    worker = subprocess.Popen(
        [command("glimpse-worker"), "--loglevel=WARNING"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        settings = load_settings(None, celery={"broker_url": redis_db})
        client = Celery("glimpse-test")
        client.conf.update(celery_config(settings))
        reply = client.send_task(names.PING).get(timeout=60)
        assert reply["pid"] != os.getpid()
        assert isinstance(reply["host"], str)
        assert reply["host"]
        client.close()
    finally:
        code, output = stop(worker)
        assert code == 0, output
