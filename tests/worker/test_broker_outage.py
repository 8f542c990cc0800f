"""The broker stops between an import's acceptance and its dispatch, then comes back: the API
still answers 202 at once (the task row is the outbox), and the scrubber re-sends the task."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from glimpse.db.engine import Database
from support import free_port
from topology import (
    create_and_stage,
    downloaded_sha512,
    image_when_settled,
    random_image,
    shared_sections,
    topology,
    wait_for,
)

REDIS_SERVER = "/usr/bin/redis-server"
# The import request must not hang while the broker is down: the publisher gives up after a
# couple of quick retries. A hang would exceed this client timeout and fail the test.
REQUEST_TIMEOUT = 20.0


class RedisProcess:
    """A redis-server of this test's own, on a fixed port, that the test stops and restarts."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        with (self.workdir / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.workdir)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        client = redis.Redis.from_url(self.url, socket_timeout=2)

        def answers() -> bool | None:
            try:
                return bool(client.ping()) or None
            except redis.ConnectionError:
                return None

        wait_for("redis-server to answer", answers, 30)
        client.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    if not os.access(REDIS_SERVER, os.X_OK):
        pytest.skip(f"{REDIS_SERVER} is not installed")
    server = RedisProcess(tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_import_accepted_while_the_broker_is_down_completes_once_it_is_back(
    tmp_path: Path, database_url: str, database: Database, own_redis: RedisProcess
) -> None:
    del database  # requested for its migrated, empty schema
    conf = [
        "[DEFAULT]",
        *shared_sections(tmp_path, database_url, own_redis.url),
        "[task]",
        "requeue_pending_after = 2",
        "[scrubber]",
        "wakeup_time = 1",
    ]
    image = random_image(tmp_path / "image.raw", 3 * 1024 * 1024 + 1)
    with (
        topology(tmp_path, conf) as topo,
        httpx.Client(base_url=topo.url, timeout=REQUEST_TIMEOUT) as client,
    ):
        topo.start_api()
        topo.start_worker()
        topo.start("glimpse-scrubber", "--daemon")
        image_id = create_and_stage(client, image)

        own_redis.stop()
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert task["status"] == "pending"
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "importing"
        assert "could not send import task" in topo.log("glimpse-api")

        own_redis.start()
        settled = image_when_settled(client, image_id, topo)
        assert settled["status"] == "active", topo.logs()
        assert settled["size"] == image.size
        assert settled["os_hash_value"] == image.sha512
        assert downloaded_sha512(client, image_id) == image.sha512
        [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert task["status"] == "success"
    assert "requeued 1 of 1 stalled import tasks" in topo.log("glimpse-scrubber")
    assert [p.name for p in (tmp_path / "images").iterdir()] == [image_id]
    assert list((tmp_path / "staging").iterdir()) == []
