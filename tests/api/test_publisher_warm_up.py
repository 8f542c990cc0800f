"""Each glimpse-api worker process connects its job publisher as it starts: an import sends its
job on a connection opened before the request came. A broker down at start is logged, and the
first send connects once it is back. Real glimpse-api processes (two workers), real Redis."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import httpx
import redis

from relay import Relay
from support import broker_connections, image_bytes
from topology import OCTET, Topology, shared_sections, topology, wait_for

WORKERS = 2
IMPORTS = 6  # each on a connection of its own, which the kernel gives either worker
CONNECTED = "job publisher: connected to the broker"
UNREACHABLE = "job publisher: broker not reachable at start"


def config(workdir: Path, broker_url: str) -> list[str]:
    database = f"sqlite:///{workdir / 'glimpse.sqlite'}"
    return ["[DEFAULT]", f"workers = {WORKERS}", *shared_sections(workdir, database, broker_url)]


def worker_pids_saying(topo: Topology, text: str) -> set[str] | None:
    """The API processes that logged `text`, once every worker has (None before)."""
    pids = {
        match.group(1)
        for match in re.finditer(
            rf"^\S+ \S+ (\d+) .*{re.escape(text)}", topo.log("glimpse-api"), re.MULTILINE
        )
    }
    return pids if len(pids) == WORKERS else None


def queued_task_ids(broker_url: str) -> list[str]:
    """The import task ids of the job messages waiting in the default queue."""
    client = redis.Redis.from_url(broker_url)
    try:
        raw = client.lrange("celery", 0, -1)
    finally:
        client.close()
    ids = []
    for message in raw:
        args, _kwargs, _embed = json.loads(base64.b64decode(json.loads(message)["body"]))
        ids.extend(args)
    return ids


def start_import(base_url: str) -> str:
    """Create, stage and import an image on a connection of its own; the import's task id."""
    with httpx.Client(base_url=base_url, timeout=60) as client:
        body = {"disk_format": "raw", "container_format": "bare", "name": "warm"}
        image_id = client.post("/v2/images", json=body).json()["id"]
        staged = client.put(
            f"/v2/images/{image_id}/stage", content=image_bytes(4096), headers=OCTET
        )
        assert staged.status_code == 204, staged.text
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        task_id: str = task["id"]
        return task_id


def test_every_worker_sends_its_imports_on_the_connection_it_opened_at_start(
    tmp_path: Path, redis_db: str
) -> None:
    with topology(tmp_path, config(tmp_path, redis_db)) as topo:
        topo.start_api()
        wait_for("every API worker to connect", lambda: worker_pids_saying(topo, CONNECTED))
        opened = broker_connections(redis_db)
        assert opened >= WORKERS

        sent = [start_import(topo.url) for _ in range(IMPORTS)]

        assert sorted(queued_task_ids(redis_db)) == sorted(sent)
        assert broker_connections(redis_db) == opened
        assert "could not send import task" not in topo.log("glimpse-api")


def test_workers_started_while_the_broker_was_down_send_once_it_is_back(
    tmp_path: Path, redis_db: str
) -> None:
    relay = Relay(("127.0.0.1", 6379))  # not up yet: connections are refused
    through_relay = redis_db.replace("127.0.0.1:6379", relay.address, 1)
    with topology(tmp_path, config(tmp_path, through_relay)) as topo:
        topo.start_api()
        wait_for(
            "every API worker to miss the broker", lambda: worker_pids_saying(topo, UNREACHABLE)
        )

        relay.up()
        try:
            sent = [start_import(topo.url) for _ in range(IMPORTS)]
            assert sorted(queued_task_ids(redis_db)) == sorted(sent)
        finally:
            relay.down()
        assert "could not send import task" not in topo.log("glimpse-api")
