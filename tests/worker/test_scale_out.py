"""The production shapes the import must work in: RabbitMQ as the broker, and several API nodes
behind a load balancer sharing one staging store, each with real processes on PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import pytest

from glimpse.config import load_settings
from glimpse.jobs import names
from support import celery_caller
from topology import (
    Topology,
    create_and_stage,
    downloaded_sha512,
    image_when_settled,
    random_image,
    shared_sections,
    topology,
)

MiB = 1024 * 1024


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_import_through_rabbitmq(tmp_path: Path, database_url: str, rabbitmq_vhost: str) -> None:
    image = random_image(tmp_path / "image.raw", 3 * MiB + 5)
    with (
        topology(tmp_path, shared_sections(tmp_path, database_url, rabbitmq_vhost)) as topo,
        httpx.Client(base_url=topo.url, timeout=60) as client,
    ):
        topo.start_api()
        topo.start_worker()
        image_id = create_and_stage(client, image)
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        settled = image_when_settled(client, image_id, topo)
        assert settled["status"] == "active", topo.logs()
        assert (settled["size"], settled["checksum"]) == (image.size, image.md5)
        assert settled["os_hash_value"] == image.sha512
        assert downloaded_sha512(client, image_id) == image.sha512
        [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert task["status"] == "success"
        # Replies come back over RabbitMQ too (Celery's rpc:// results).
        settings = load_settings(None, celery={"broker_url": rabbitmq_vhost})
        with celery_caller(settings) as caller:
            reply = caller.send_task(names.PING).get(timeout=60)
        assert reply["pid"] != os.getpid()
    assert list((tmp_path / "staging").iterdir()) == []


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
@pytest.mark.usefixtures("database")  # its migrated, empty schema
def test_import_on_another_api_node_than_the_stage(
    tmp_path: Path, database_url: str, redis_db: str
) -> None:
    """Node A receives the data, node B the import request, and a worker elsewhere does the
    job: nothing ties an import to the node that staged it."""
    image = random_image(tmp_path / "image.raw", 4 * MiB + 1)
    conf = shared_sections(tmp_path, database_url, redis_db)
    node_b_dir = tmp_path / "node-b"
    node_b_dir.mkdir()
    with topology(tmp_path, conf) as node_a:
        node_b = Topology(node_b_dir, node_a.conf)
        try:
            node_a.start_api()
            node_b.start_api()
            node_a.start_worker()
            with (
                httpx.Client(base_url=node_a.url, timeout=60) as client_a,
                httpx.Client(base_url=node_b.url, timeout=60) as client_b,
            ):
                image_id = create_and_stage(client_a, image)
                assert client_b.get(f"/v2/images/{image_id}").json()["status"] == "uploading"
                started = client_b.post(
                    f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
                )
                assert started.status_code == 202, started.text
                again = client_a.post(
                    f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
                )
                assert again.status_code == 409, again.text
                settled = image_when_settled(client_b, image_id, node_a)
                assert settled["status"] == "active", node_a.logs() + node_b.logs()
                assert settled["os_hash_value"] == image.sha512
                assert downloaded_sha512(client_a, image_id) == image.sha512
                assert downloaded_sha512(client_b, image_id) == image.sha512
        finally:
            node_b.stop_all()
    assert list((tmp_path / "staging").iterdir()) == []
