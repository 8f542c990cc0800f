"""The job publisher against real Redis servers: one that works, and one that hangs."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import Iterator

import pytest
import redis

from glimpse.config import load_settings
from glimpse.jobs import names
from glimpse.jobs.publisher import JobPublisher

# Far above what a send to a hung broker takes now (a few seconds); without the publisher's
# socket timeouts the send never returned.
BOUND = 60.0


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a hung broker)."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


async def test_send_reaches_redis(redis_db: str) -> None:
    publisher = JobPublisher(load_settings(None, celery={"broker_url": redis_db}))
    try:
        assert await publisher.publish_import("task-1") is True
    finally:
        await publisher.aclose()
    client = redis.Redis.from_url(redis_db)
    [raw] = client.lrange("celery", 0, -1)
    client.close()
    message = json.loads(raw)
    assert message["headers"]["task"] == names.IMPORT
    args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
    assert args == ["task-1"]


async def test_a_hung_broker_fails_the_send_within_a_bound(silent_server: int) -> None:
    settings = load_settings(None, celery={"broker_url": f"redis://127.0.0.1:{silent_server}/0"})
    publisher = JobPublisher(settings)
    try:
        assert await asyncio.wait_for(publisher.publish_import("task-2"), BOUND) is False
    finally:
        await publisher.aclose()
