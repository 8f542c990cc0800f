"""`make cluster` driven as a client through its balancer: two API nodes, two workers and two
scrubbers sharing PostgreSQL, Redis and the staging directory, and the failures a cluster must
ride out (an API node killed, a worker killed mid-import, a rolling restart)."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import Counter
from typing import Any

import httpx
import pytest
from cluster_load import OCTET, Load
from cluster_support import LEASE_SECONDS, WebServer, sample

from support import image_bytes
from topology import wait_for

pytestmark = pytest.mark.cluster
KiB = 1024
MiB = 1024 * KiB


def create(client: httpx.Client, **body: Any) -> str:
    created = client.post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare", **body}
    )
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


def uploaded(client: httpx.Client, data: bytes, **body: Any) -> str:
    image_id = create(client, **body)
    put = client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
    assert put.status_code == 204, put.text
    return image_id


def settled(client: httpx.Client, image_id: str, cluster: Any) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        image: dict[str, Any] = client.get(f"/v2/images/{image_id}").json()
        return None if image["status"] in {"uploading", "importing", "saving"} else image

    try:
        return wait_for(f"image {image_id} to settle", done)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{cluster.logs()}") from None


def sha512_of_download(client: httpx.Client, image_id: str) -> str:
    digest = hashlib.sha512()
    with client.stream("GET", f"/v2/images/{image_id}/file") as answer:
        assert answer.status_code == 200
        for chunk in answer.iter_bytes():
            digest.update(chunk)
    return digest.hexdigest()


def served_by(cluster: Any) -> Counter[str]:
    """Requests the balancer logged, by API node."""
    return Counter(re.findall(r" api/(api-\d) ", cluster.log("balancer")))


def log_sizes(cluster: Any, *names: str) -> dict[str, int]:
    return {name: len(cluster.log(name)) for name in names}


def since(cluster: Any, offsets: dict[str, int]) -> dict[str, str]:
    return {name: cluster.log(name)[offset:] for name, offset in offsets.items()}


@pytest.fixture
def client(cluster: Any) -> Any:
    with httpx.Client(base_url=cluster.url, timeout=60) as balanced:
        yield balanced


def test_upload_and_download_through_the_balancer_reach_both_nodes(
    cluster: Any, client: httpx.Client
) -> None:
    before = served_by(cluster)
    data = image_bytes(3 * MiB + 7)
    image_id = uploaded(client, data, name="through the balancer")
    for _ in range(6):
        assert sha512_of_download(client, image_id) == hashlib.sha512(data).hexdigest()
    image = client.get(f"/v2/images/{image_id}").json()
    assert (image["status"], image["size"]) == ("active", len(data))
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    served = served_by(cluster) - before
    assert set(served) == {"api-1", "api-2"}, served
    assert sum(served.values()) >= 8


def test_staged_on_one_node_imported_through_the_other(cluster: Any) -> None:
    node_1, node_2 = (cluster.nodes[name] for name in ("api-1", "api-2"))
    data = image_bytes(2 * MiB + 3)
    with (
        httpx.Client(base_url=f"http://127.0.0.1:{node_1.port}", timeout=60) as first,
        httpx.Client(base_url=f"http://127.0.0.1:{node_2.port}", timeout=60) as second,
    ):
        image_id = create(first, name="staged on api-1")
        staged = first.put(f"/v2/images/{image_id}/stage", content=data, headers=OCTET)
        assert staged.status_code == 204, staged.text
        started = second.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        image = settled(second, image_id, cluster)
        assert image["status"] == "active", cluster.logs()
        assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
        assert sha512_of_download(first, image_id) == image["os_hash_value"]
    assert list((cluster.workdir / "staging").iterdir()) == []


def test_every_import_method_through_the_balancer(
    cluster: Any, client: httpx.Client, web_server: WebServer
) -> None:
    data = image_bytes(1 * MiB + 11)
    digest = hashlib.sha512(data).hexdigest()
    web_server.files["web.raw"] = data

    direct = create(client, name="glance-direct")
    staged = client.put(f"/v2/images/{direct}/stage", content=data, headers=OCTET)
    assert staged.status_code == 204, staged.text
    web = create(client, name="web-download")
    for image_id, method in (
        (direct, {"name": "glance-direct"}),
        (web, {"name": "web-download", "uri": web_server.url("web.raw")}),
    ):
        started = client.post(f"/v2/images/{image_id}/import", json={"method": method})
        assert started.status_code == 202, started.text
    for image_id in (direct, web):
        image = settled(client, image_id, cluster)
        assert (image["status"], image["os_hash_value"]) == ("active", digest), cluster.logs()
        assert image["stores"] == "fast"

    copied = client.post(
        f"/v2/images/{web}/import", json={"method": {"name": "copy-image"}, "stores": ["cheap"]}
    )
    assert copied.status_code == 202, copied.text

    def in_both() -> dict[str, Any] | None:
        image: dict[str, Any] = client.get(f"/v2/images/{web}").json()
        return image if sorted(image["stores"].split(",")) == ["cheap", "fast"] else None

    assert wait_for("copy-image to reach cheap", in_both)["status"] == "active"
    assert (cluster.workdir / "cheap" / web).read_bytes() == data
    methods = {t["id"]: t for t in client.get(f"/v2/images/{web}/tasks").json()["tasks"]}
    assert {t["status"] for t in methods.values()} == {"success"}


def test_every_node_answers_its_health_checks_and_metrics(
    cluster: Any, client: httpx.Client
) -> None:
    ready = client.get("/healthcheck/ready", headers={"Accept": "application/json"})
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"node": "OK", "database": "OK", "broker": "OK"}
    # Each node's metrics are for the operator's scraper, not for the balancer's clients.
    assert client.get("/metrics").status_code == 404
    texts = {}
    for node in cluster.nodes.values():
        if node.kind == "balancer":
            continue
        if node.kind == "api":
            live = httpx.get(f"http://127.0.0.1:{node.port}/healthcheck", timeout=30)
            assert (live.status_code, live.text) == (200, "OK")
        answer = httpx.get(node.metrics_url, timeout=30)
        assert answer.status_code == 200, node.name
        texts[node.name] = answer.text
    downloads = {"method": "GET", "route": "/v2/images/{image_id}/file", "status": "200"}
    for name in ("api-1", "api-2"):
        assert sample(texts[name], "glimpse_api_requests_total", **downloads) >= 1, name
    imported = sum(
        sample(texts[name], "glimpse_import_jobs_total", method="glance-direct", outcome="success")
        for name in ("worker-1", "worker-2")
    )
    assert imported >= 2  # the imports of the tests above
    for name in ("worker-1", "worker-2"):
        assert sample(texts[name], "glimpse_queue_messages", queue="celery") == 0
        assert 'glimpse_queue_messages{queue="celery"}' in texts[name]
    for name in ("scrubber-1", "scrubber-2"):
        assert "glimpse_pending_deletes " in texts[name]
        assert sample(texts[name], "glimpse_scrubber_last_pass_timestamp_seconds") > 0


def test_each_pending_delete_is_scrubbed_once_by_two_scrubbers(
    cluster: Any, client: httpx.Client
) -> None:
    offsets = log_sizes(cluster, "scrubber-1", "scrubber-2")
    images = [uploaded(client, image_bytes(16 * KiB), name=f"doomed {n}") for n in range(12)]
    for image_id in images:
        assert client.delete(f"/v2/images/{image_id}").status_code == 204

    def all_scrubbed() -> bool | None:
        left = [i for i in images if (cluster.workdir / "fast" / i).exists()]
        gone = all(client.get(f"/v2/images/{i}").status_code == 404 for i in images)
        return (not left and gone) or None

    wait_for("both scrubbers to scrub every deleted image", all_scrubbed)
    removed = {
        name: sum(int(n) for n in re.findall(r"scrubbed (\d+) locations", text))
        for name, text in since(cluster, offsets).items()
    }
    assert sum(removed.values()) == len(images), removed


def test_api_node_killed_under_load_loses_nothing(cluster: Any, client: httpx.Client) -> None:
    """kill -9 of api-1 while 32 clients list and download and 4 upload: requests in flight on
    api-1 may fail, every request sent after the kill succeeds through api-2, every upload
    that succeeded is there, and no image is left saving."""
    data = {uploaded(client, image_bytes(MiB + n), name=f"read {n}"): n for n in range(4)}
    images = {image_id: sha512_of_download(client, image_id) for image_id in data}
    with Load(cluster.url, images, readers=32, uploaders=4) as load:
        wait_for("the load to run", lambda: load.count() >= 64 or None)
        cluster.kill("api-1")
        killed = time.monotonic()
        wait_for("requests after the kill", lambda: load.count(since=killed) >= 200 or None)
    assert load.failures(since=killed) == []
    assert load.count(since=killed) >= 200

    cluster.spawn(cluster.nodes["api-1"])
    cluster.wait_ready(cluster.nodes["api-1"])
    for image_id, sha512 in load.uploaded.items():
        image = client.get(f"/v2/images/{image_id}").json()
        assert (image["status"], image["os_hash_value"]) == ("active", sha512)

    def none_saving() -> bool | None:
        # An upload cut by the kill holds its image until its lease ([scrubber] lease_time).
        stuck = [
            image["id"]
            for status in ("saving", "importing")
            for image in client.get("/v2/images", params={"status": status}).json()["images"]
        ]
        return not stuck or None

    wait_for(f"uploads cut by the kill to give up (lease {LEASE_SECONDS} s)", none_saving)


def test_worker_killed_mid_import_the_other_worker_finishes_it(
    cluster: Any, client: httpx.Client, web_server: WebServer
) -> None:
    data = image_bytes(2 * MiB + 5)
    web_server.files["held.raw"] = data
    gate = web_server.held["held.raw"] = threading.Event()
    offsets = log_sizes(cluster, "worker-1", "worker-2")
    image_id = create(client, name="worker killed")
    started = client.post(
        f"/v2/images/{image_id}/import",
        json={"method": {"name": "web-download", "uri": web_server.url("held.raw")}},
    )
    assert started.status_code == 202, started.text

    def taken_by() -> str | None:
        taken = [n for n, text in since(cluster, offsets).items() if "import[" in text]
        return taken[0] if len(taken) == 1 else None

    victim = wait_for("a worker to take the import", taken_by)
    survivor = "worker-2" if victim == "worker-1" else "worker-1"
    assert client.get(f"/v2/images/{image_id}").json()["status"] == "importing"
    cluster.kill(victim)
    gate.set()
    image = settled(client, image_id, cluster)
    assert image["status"] == "active", cluster.logs()
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert f"image {image_id} active" in since(cluster, offsets)[survivor]
    [task] = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
    assert task["status"] == "success"
    cluster.spawn(cluster.nodes[victim])
    cluster.wait_ready(cluster.nodes[victim])


def test_rolling_restart_of_both_api_nodes_fails_no_request(
    cluster: Any, client: httpx.Client
) -> None:
    """Each API node in turn gets SIGTERM (it drains: fails its health check, closes its
    connections after each response, finishes what it serves), exits and starts again, under
    a steady load of readers and uploaders: not one request fails."""
    data = {uploaded(client, image_bytes(512 * KiB + n), name=f"roll {n}"): n for n in range(3)}
    images = {image_id: sha512_of_download(client, image_id) for image_id in data}
    offsets = log_sizes(cluster, "api-1", "api-2")
    with Load(cluster.url, images, readers=8, uploaders=2) as load:
        wait_for("the load to run", lambda: load.count() >= 32 or None)
        for name in ("api-1", "api-2"):
            before = cluster.nodes[name].pid
            cluster.restart(name)
            assert cluster.nodes[name].pid != before
        restarted = time.monotonic()
        wait_for("requests after the restarts", lambda: load.count(since=restarted) >= 32 or None)
    sent, failed = len(load.outcomes), load.failures()
    print(f"rolling restart: {sent} requests sent, {len(failed)} failed")  # noqa: T201 -- the figure is the report
    assert failed == []
    assert sum(1 for o in load.outcomes if o.what == "upload") >= 2
    for name, text in since(cluster, offsets).items():
        assert "SIGTERM: draining" in text, name
    for image_id, sha512 in load.uploaded.items():
        assert client.get(f"/v2/images/{image_id}").json()["os_hash_value"] == sha512
