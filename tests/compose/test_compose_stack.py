"""deploy/compose.yaml end to end on a real Docker engine, driven as a client would drive it.

One stack (conftest.py: built, up, healthy; `down -v` at the end whatever happens) serves the
tests in file order; later tests check that the images of earlier ones survive restarts. The
client logs in to the shipped Keystone on its published port and talks to the API only through
the balancer's published port, both on 127.0.0.1. tests/compose/compose.test.yaml adds an HTTP
server on the compose network (web-download) and short scrub and lease times.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from compose_stack import COMPOSE_FILE, FIGURES, ROOT, SLOW_FILE, WEB_FILE, MiB, Stack, WebFiles
from openstack import connection

pytestmark = [
    pytest.mark.compose,
    # Building and starting the stack counts against the first test.
    pytest.mark.timeout(1800),
    # openstacksdk warns about its own internals on every Connection and proxy call.
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK60Warning"),
    pytest.mark.filterwarnings("ignore::openstack.warnings.RemovedInSDK50Warning"),
]

OCTET = {"Content-Type": "application/octet-stream"}
IMAGES_DIR = "/var/lib/glimpse/images"
CHEAP_DIR = "/var/lib/glimpse/cheap"
STAGING_DIR = "/var/lib/glimpse/staging"
DISABLE_FILE = "/var/lib/glimpse/run/healthcheck_disable"
SCRUB_TIME = 15  # compose.test.yaml's GLIMPSE_SCRUB_TIME
HEALTHY = {
    "api": 2,
    "worker": 2,
    "scrubber": 2,
    "keystone": 1,
    "balancer": 1,
    "postgres": 1,
    "redis": 1,
    "webserver": 1,
}
JOBS = ("keystone-bootstrap", "migrate", "metadefs")
SERVED_BY = re.compile(r" api/api\d+ (\d+\.\d+\.\d+\.\d+):9292 ")


@dataclass(frozen=True)
class Kept:
    """An image later tests expect to find intact."""

    id: str
    data: bytes
    stores: frozenset[str]

    @property
    def md5(self) -> str:
        return hashlib.md5(self.data, usedforsecurity=False).hexdigest()


KEPT: list[Kept] = []


# --- helpers -----------------------------------------------------------------------------------


@contextmanager
def admin(stack: Stack) -> Iterator[httpx.Client]:
    token, _ = stack.login()
    with stack.client(token) as client:
        yield client


def new_image(client: httpx.Client, name: str) -> str:
    body = {"name": name, "disk_format": "raw", "container_format": "bare"}
    created = client.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image_id: str = created.json()["id"]
    return image_id


def settled(
    client: httpx.Client, image_id: str, done: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The image once `done` holds for it (polled every second), or fail with its last state."""
    deadline = time.monotonic() + timeout
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        response = client.get(f"/v2/images/{image_id}")
        assert response.status_code == 200, response.text
        body = response.json()
        if done(body):
            return body
        time.sleep(1)
    tasks = client.get(f"/v2/images/{image_id}/tasks").text
    pytest.fail(f"image {image_id} did not settle in {timeout:.0f}s: {body}\ntasks: {tasks}")


def imported(body: dict[str, Any]) -> bool:
    return body["status"] in {"active", "queued"} and not body.get("os_glance_importing_to_stores")


def stores_of(body: dict[str, Any]) -> frozenset[str]:
    return frozenset(filter(None, body.get("stores", "").split(",")))


def assert_intact(client: httpx.Client, kept: Kept) -> None:
    """Active, in its stores, with its checksums, and the same bytes on download."""
    body = client.get(f"/v2/images/{kept.id}").json()
    assert body["status"] == "active", body
    assert body["size"] == len(kept.data)
    assert body["checksum"] == kept.md5
    assert body["os_hash_algo"] == "sha512"
    assert body["os_hash_value"] == hashlib.sha512(kept.data).hexdigest()
    assert stores_of(body) == kept.stores
    download = client.get(f"/v2/images/{kept.id}/file")
    assert download.status_code == 200
    assert download.headers["Content-MD5"] == kept.md5
    assert download.content == kept.data


def served_addresses(stack: Stack, since: int) -> list[str]:
    """API node addresses of the requests the balancer logged since a Unix time."""
    logs = stack.compose("logs", "--no-color", "--since", str(since), "balancer").stdout
    return SERVED_BY.findall(logs)


def balancer_says(stack: Stack, since: int, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in stack.compose("logs", "--no-color", "--since", str(since), "balancer").stdout:
            return
        time.sleep(1)
    pytest.fail(f"the balancer never logged {text!r}")


def wait_healthy(stack: Stack, service: str, count: int, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    states: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        states = [(c["State"], c["Health"]) for c in stack.containers(service)]
        if states.count(("running", "healthy")) == count == len(states):
            return
        time.sleep(2)
    pytest.fail(f"{service}: {states} after {timeout:.0f}s, expected {count} healthy")


def upload_and_import(client: httpx.Client, name: str) -> None:
    """The data path once more: upload + download, stage + glance-direct import."""
    payload = os.urandom(2 * MiB)
    uploaded = new_image(client, f"{name}-upload")
    assert (
        client.put(f"/v2/images/{uploaded}/file", content=payload, headers=OCTET).status_code == 204
    )
    assert_intact(client, Kept(uploaded, payload, frozenset({"fast"})))
    staged = new_image(client, f"{name}-direct")
    assert (
        client.put(f"/v2/images/{staged}/stage", content=payload, headers=OCTET).status_code == 204
    )
    started = client.post(f"/v2/images/{staged}/import", json={"method": {"name": "glance-direct"}})
    assert started.status_code == 202, started.text
    settled(client, staged, imported, timeout=180)
    assert_intact(client, Kept(staged, payload, frozenset({"fast"})))


# --- the tests, in order -----------------------------------------------------------------------


def test_docker_compose_accepts_the_shipped_file_alone(stack: Stack) -> None:
    env = {k: v for k, v in stack.env.items() if not k.startswith("GLIMPSE_")}
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    # Without any GLIMPSE_* variable both ports are on loopback only.
    published = sorted(
        (name, port["host_ip"], port["published"])
        for name, service in services.items()
        for port in service.get("ports", [])
    )
    assert published == [("balancer", "127.0.0.1", "9292"), ("keystone", "127.0.0.1", "5000")]


def test_every_service_is_healthy_and_only_the_two_loopback_ports_are_published(
    stack: Stack,
) -> None:
    rows = stack.containers()
    by_service: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_service.setdefault(row["Service"], []).append(row)
    for service, count in HEALTHY.items():
        states = [(row["State"], row["Health"]) for row in by_service.get(service, [])]
        assert states == [("running", "healthy")] * count, (service, states)
    for job in JOBS:
        assert [(row["State"], row["ExitCode"]) for row in by_service[job]] == [("exited", 0)]
    published = sorted(
        (row["Service"], port["TargetPort"], port["URL"], port["PublishedPort"])
        for row in rows
        for port in row.get("Publishers") or []
        if port.get("PublishedPort")
    )
    api_port = int(stack.env["GLIMPSE_API_PORT"])
    keystone_port = int(stack.env["GLIMPSE_KEYSTONE_PORT"])
    assert published == [
        ("balancer", 9292, "127.0.0.1", api_port),
        ("keystone", 5000, "127.0.0.1", keystone_port),
    ]
    # Through the balancer, unauthenticated, as oslo.middleware answers it.
    health = httpx.get(f"{stack.api_url}/healthcheck", timeout=30)
    assert (health.status_code, health.text) == (200, "OK")
    assert health.headers["Content-Type"].startswith("text/plain")
    assert httpx.head(f"{stack.api_url}/healthcheck", timeout=30).status_code == 204


def test_no_token_or_forged_identity_headers_get_401(stack: Stack) -> None:
    forged = {
        "X-Identity-Status": "Confirmed",
        "X-Roles": "admin",
        "X-User-Id": "mallory",
        "X-Project-Id": "admin",
        "X-Tenant-Id": "admin",
    }
    body = {"name": "forged", "disk_format": "raw", "container_format": "bare"}
    with httpx.Client(base_url=stack.api_url, timeout=30) as anonymous:
        plain = anonymous.get("/v2/images")
        assert plain.status_code == 401
        assert plain.headers["WWW-Authenticate"] == f'Keystone uri="{stack.keystone_url}"'
        assert anonymous.get("/v2/images", headers=forged).status_code == 401
        assert anonymous.post("/v2/images", json=body, headers=forged).status_code == 401
        garbage = {**forged, "X-Auth-Token": "not-a-token"}
        assert anonymous.get("/v2/images", headers=garbage).status_code == 401
    # Keystone's own API wants a token too.
    assert httpx.get(f"{stack.keystone_url}/v3/users", timeout=30).status_code == 401


def test_keystone_bootstrap_refuses_the_default_passwords_beyond_loopback(stack: Stack) -> None:
    refused = stack.compose(
        "run",
        "--rm",
        "--no-deps",
        "-e",
        "PUBLISH_ADDRESS=0.0.0.0",
        "-e",
        "ADMIN_PASSWORD=change-me",
        "keystone-bootstrap",
        check=False,
    )
    assert refused.returncode != 0
    assert "the ports are published on 0.0.0.0" in refused.stderr


def test_the_metadefs_job_loaded_the_shipped_definitions(stack: Stack) -> None:
    shipped = {
        json.loads(path.read_text(encoding="utf-8"))["namespace"]
        for path in (ROOT / "etc" / "metadefs").glob("*.json")
    }
    with admin(stack) as client:
        listed = client.get("/v2/metadefs/namespaces", params={"limit": 1000})
        assert listed.status_code == 200, listed.text
        assert {ns["namespace"] for ns in listed.json()["namespaces"]} == shipped


def test_upload_and_download_with_openstacksdk_through_the_catalog(stack: Stack) -> None:
    conn = connection.Connection(
        auth_type="password",
        auth={
            "auth_url": f"{stack.keystone_url}/v3",
            "username": "admin",
            "password": stack.admin_password,
            "project_name": "admin",
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        region_name="RegionOne",
    )
    try:
        # The catalog's public image endpoint is the balancer's published port.
        assert conn.image.get_endpoint() == f"{stack.api_url}/v2/"
        payload = os.urandom(4 * MiB)
        image = conn.image.create_image(
            name="compose-upload", data=payload, disk_format="raw", container_format="bare"
        )
        fetched = conn.image.get_image(image.id)
        assert fetched.status == "active"
        assert fetched.size == len(payload)
        assert fetched.checksum == hashlib.md5(payload, usedforsecurity=False).hexdigest()
        assert fetched.hash_value == hashlib.sha512(payload).hexdigest()
        assert conn.image.download_image(image).content == payload
    finally:
        conn.close()
    assert stack.files("scrubber", IMAGES_DIR)[image.id] == len(payload)
    KEPT.append(Kept(image.id, payload, frozenset({"fast"})))


def test_glance_direct_import_stages_on_the_shared_volume_and_a_worker_imports(
    stack: Stack,
) -> None:
    payload = os.urandom(4 * MiB)
    with admin(stack) as client:
        image_id = new_image(client, "compose-direct")
        staged = client.put(f"/v2/images/{image_id}/stage", content=payload, headers=OCTET)
        assert staged.status_code == 204, staged.text
        # Whichever node took the stage, every API node and worker sees the data.
        for service, index in (("api", 1), ("api", 2), ("worker", 1), ("worker", 2)):
            files = stack.files(service, STAGING_DIR)
            assert files.get(image_id) == len(payload), (service, index, files)
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "glance-direct"}}
        )
        assert started.status_code == 202, started.text
        body = settled(client, image_id, imported, timeout=180)
        assert body["status"] == "active", body
        kept = Kept(image_id, payload, frozenset({"fast"}))
        assert_intact(client, kept)
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert [task["status"] for task in tasks] == ["success"]
    KEPT.append(kept)


def test_copy_image_puts_a_second_copy_in_the_cheap_store(stack: Stack) -> None:
    source = KEPT[-1]
    with admin(stack) as client:
        started = client.post(
            f"/v2/images/{source.id}/import",
            json={"method": {"name": "copy-image"}, "stores": ["cheap"]},
        )
        assert started.status_code == 202, started.text
        body = settled(
            client, source.id, lambda b: imported(b) and "cheap" in stores_of(b), timeout=180
        )
        assert stores_of(body) == {"fast", "cheap"}
        copied = Kept(source.id, source.data, frozenset({"fast", "cheap"}))
        assert_intact(client, copied)
    assert stack.files("worker", CHEAP_DIR)[source.id] == len(source.data)
    assert stack.files("api", IMAGES_DIR)[source.id] == len(source.data)
    KEPT[-1] = copied


def test_web_download_from_a_server_on_the_compose_network(
    stack: Stack, web_files: WebFiles
) -> None:
    with admin(stack) as client:
        image_id = new_image(client, "compose-web")
        started = client.post(
            f"/v2/images/{image_id}/import",
            json={"method": {"name": "web-download", "uri": f"http://webserver/{WEB_FILE}"}},
        )
        assert started.status_code == 202, started.text
        body = settled(client, image_id, imported, timeout=180)
        assert body["status"] == "active", body
        kept = Kept(image_id, web_files.data[WEB_FILE], frozenset({"fast"}))
        assert body["checksum"] == web_files.md5(WEB_FILE)
        assert_intact(client, kept)
    KEPT.append(kept)


def test_delayed_delete_keeps_the_data_until_a_scrubber_removes_it(stack: Stack) -> None:
    payload = os.urandom(MiB)
    with admin(stack) as client:
        image_id = new_image(client, "compose-delete")
        assert (
            client.put(f"/v2/images/{image_id}/file", content=payload, headers=OCTET).status_code
            == 204
        )
        deleted_at = time.monotonic()
        assert client.delete(f"/v2/images/{image_id}").status_code == 204
        assert client.get(f"/v2/images/{image_id}").status_code == 404
    # pending_delete: the data stays for scrub_time.
    assert stack.files("api", IMAGES_DIR).get(image_id) == len(payload)
    assert time.monotonic() - deleted_at < SCRUB_TIME, "too slow to see the data kept"
    deadline = time.monotonic() + 120
    while image_id in stack.files("scrubber", IMAGES_DIR):
        assert time.monotonic() < deadline, "no scrubber removed the data"
        time.sleep(2)
    FIGURES["delete to data removed"] = f"{time.monotonic() - deleted_at:.0f}s"


def test_restart_keeps_every_image_and_its_data(stack: Stack) -> None:
    started = time.monotonic()
    stack.compose("restart", timeout=600)
    for service, count in HEALTHY.items():
        wait_healthy(stack, service, count)
    FIGURES["restart to all healthy"] = f"{time.monotonic() - started:.0f}s"
    with admin(stack) as client:
        for kept in KEPT:
            assert_intact(client, kept)


def test_down_and_up_keep_the_volumes_the_images_and_the_tokens(stack: Stack) -> None:
    token, _ = stack.login()
    stack.compose("down", "--timeout", "20", timeout=300)
    assert stack.containers() == []
    volumes = stack.docker(
        "volume", "ls", "--quiet", "--filter", "label=com.docker.compose.project=glimpse-test"
    ).split()
    assert sorted(volumes) == [
        f"glimpse-test_{name}"
        for name in ("cheap", "images", "keystone", "pgdata", "redisdata", "staging")
    ]
    FIGURES["down + up to all healthy"] = f"{stack.up():.0f}s"
    # A token issued before `down` still works: Keystone's keys are on its volume.
    with stack.client(token) as client:
        for kept in KEPT:
            assert_intact(client, kept)


def test_a_worker_killed_mid_import_resumes_the_import_once_back(
    stack: Stack, web_files: WebFiles
) -> None:
    with admin(stack) as client:
        image_id = new_image(client, "compose-killed")
        uri = f"http://webserver/slow/{SLOW_FILE}"
        started = client.post(
            f"/v2/images/{image_id}/import", json={"method": {"name": "web-download", "uri": uri}}
        )
        assert started.status_code == 202, started.text

        def copying(_: dict[str, Any]) -> bool:
            tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
            message = tasks[0]["message"] if tasks else ""
            copied = re.match(r"Copied (\d+) MiB", message or "")
            return copied is not None and int(copied.group(1)) >= 2

        settled(client, image_id, copying, timeout=120)
        workers = [row["Name"] for row in stack.running("worker")]
        assert len(workers) == 2
        stack.docker("kill", *workers)
        killed_at = time.monotonic()
        assert stack.running("worker") == []
        time.sleep(3)
        assert client.get(f"/v2/images/{image_id}").json()["status"] == "importing"
        # The same containers, as a restart policy would (compose start would re-run the jobs).
        stack.docker("start", *workers)
        wait_healthy(stack, "worker", 2)
        body = settled(client, image_id, imported, timeout=300)
        FIGURES["worker kill to import done"] = f"{time.monotonic() - killed_at:.0f}s"
        assert body["status"] == "active", body
        kept = Kept(image_id, web_files.data[SLOW_FILE], frozenset({"fast"}))
        assert_intact(client, kept)
        tasks = client.get(f"/v2/images/{image_id}/tasks").json()["tasks"]
        assert [task["status"] for task in tasks] == ["success"], tasks
    KEPT.append(kept)


def test_api_scaled_to_three_behind_the_balancer(stack: Stack) -> None:
    # --no-recreate: the two running nodes stay as they are.
    elapsed = stack.up("--no-recreate", "--scale", "api=3", "api")
    FIGURES["scale api to 3"] = f"{elapsed:.0f}s"
    nodes = {stack.address(row["Name"]) for row in stack.running("api")}
    assert len(nodes) == 3
    since = int(time.time())
    deadline = time.monotonic() + 90
    with admin(stack) as client:
        # The balancer finds the new node through Docker's DNS and checks it before use.
        while set(served_addresses(stack, since)) != nodes:
            assert time.monotonic() < deadline, (served_addresses(stack, since), nodes)
            for _ in range(12):
                assert client.get("/v2/images", params={"limit": 1}).status_code == 200
        upload_and_import(client, "compose-scaled")
        for kept in KEPT:
            assert_intact(client, kept)


def test_a_drained_api_node_gets_no_more_requests(stack: Stack) -> None:
    drained, *others = stack.running("api")
    address = stack.address(drained["Name"])
    since = int(time.time())
    stack.docker("exec", drained["Name"], "touch", DISABLE_FILE)
    answer = stack.docker(
        "exec",
        drained["Name"],
        "python",
        "-c",
        "import urllib.request, urllib.error\n"
        "try:\n    urllib.request.urlopen('http://127.0.0.1:9292/healthcheck')\n"
        "except urllib.error.HTTPError as e:\n    print(e.code, e.read().decode())",
    )
    assert answer.strip() == "503 DISABLED BY FILE"
    balancer_says(stack, since, " is DOWN")
    after = int(time.time()) + 1
    time.sleep(1)
    with admin(stack) as client:
        for _ in range(30):
            assert client.get("/v2/images", params={"limit": 1}).status_code == 200
    served = served_addresses(stack, after)
    assert len(served) >= 30
    assert address not in served
    assert set(served) <= {stack.address(row["Name"]) for row in others}
    stack.docker("exec", drained["Name"], "rm", DISABLE_FILE)
    balancer_says(stack, after, " is UP")
