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
from relay import Relay
from support import broker_connections

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


def queued(broker_url: str) -> int:
    client = redis.Redis.from_url(broker_url)
    try:
        return int(client.llen("celery"))
    finally:
        client.close()


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


async def test_the_first_send_after_the_warm_up_opens_no_connection(redis_db: str) -> None:
    publisher = JobPublisher(load_settings(None, celery={"broker_url": redis_db}))
    try:
        assert await publisher.warm() is True
        opened = broker_connections(redis_db)
        assert opened > 0
        assert await publisher.publish_import("task-3") is True
        assert broker_connections(redis_db) == opened
    finally:
        await publisher.aclose()
    assert queued(redis_db) == 1


async def test_a_warm_up_without_broker_leaves_the_connecting_to_the_send(redis_db: str) -> None:
    relay = Relay(("127.0.0.1", 6379))  # not up yet: connections are refused
    through_relay = redis_db.replace("127.0.0.1:6379", relay.address, 1)
    publisher = JobPublisher(load_settings(None, celery={"broker_url": through_relay}))
    try:
        assert await publisher.warm() is False
        relay.up()
        assert await publisher.publish_import("task-4") is True
    finally:
        await publisher.aclose()
        relay.down()
    assert queued(redis_db) == 1
