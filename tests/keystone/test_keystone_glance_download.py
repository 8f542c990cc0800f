"""glance-download between two Glimpse deployments sharing one Keystone.

RegionTwo is a real glimpse-api under uvicorn (its own database and store) that Keystone's
catalog lists as the `image` service of RegionTwo; it holds the source image. RegionOne's API
(in process) admits the import, and its worker (in process) finds RegionTwo in the caller's
catalog, reads the image there with the caller's token through the URL filter, and imports it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from keystone_server import KeystoneEnv, SetupError, free_port

from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.tasks import TaskRepository
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from support import command, environment, stop

pytestmark = pytest.mark.keystone

START_TIMEOUT = 90.0
OCTET = {"Content-Type": "application/octet-stream"}
METHODS = "glance-direct,web-download,copy-image,glance-download"

REGION_TWO_CONF = """\
[DEFAULT]
bind_host = 127.0.0.1
bind_port = {port}

[database]
connection = sqlite:///{workdir}/glimpse.sqlite

[glance_store]
filesystem_store_datadir = {workdir}/images

[os_glance_staging_store]
filesystem_store_datadir = {workdir}/staging

[os_glance_tasks_store]
filesystem_store_datadir = {workdir}/tasks

[celery]
broker_data_dir = {workdir}/broker

[keystone_authtoken]
www_authenticate_uri = {www}
auth_url = {auth_url}
auth_type = password
username = {username}
password = {password}
project_name = {project}
user_domain_name = Default
project_domain_name = Default

[paste_deploy]
flavor = keystone

[image_format]
# Lets a test hold "qcow2" data that is not qcow2, which the importing side then refuses.
require_image_format_match = false
"""


@dataclass(frozen=True)
class RegionTwo:
    url: str
    port: int


def _register(keystone: KeystoneEnv, url: str) -> str:
    """RegionTwo and its public image endpoint; the endpoint's id."""
    admin = keystone.admin
    try:
        admin.call("POST", "/regions", json={"region": {"id": "RegionTwo"}})
    except SetupError as exc:
        if "409" not in str(exc):
            raise
    [service] = admin.call("GET", "/services", params={"type": "image"})["services"]
    body = {
        "endpoint": {
            "service_id": service["id"],
            "interface": "public",
            "url": url,
            "region_id": "RegionTwo",
        }
    }
    return str(admin.call("POST", "/endpoints", json=body)["endpoint"]["id"])


@pytest.fixture(scope="module")
def region_two(
    keystone: KeystoneEnv, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RegionTwo]:
    """glimpse-api of RegionTwo, listed in the catalog while the module runs."""
    workdir = tmp_path_factory.mktemp("region-two")
    port = free_port()
    conf = workdir / "glance-api.conf"
    conf.write_text(
        REGION_TWO_CONF.format(
            port=port,
            workdir=workdir,
            www=keystone.url.removesuffix("/v3"),
            auth_url=keystone.url,
            username=keystone.service.name,
            password=keystone.service.password,
            project=keystone.service.project,
        )
    )
    env = environment(GLIMPSE_LOG_LEVEL="INFO")
    manage = [command("glimpse-manage"), "--config-file", str(conf), "db", "sync"]
    sync = subprocess.run(
        manage, env=env, cwd=workdir, capture_output=True, text=True, timeout=60, check=False
    )
    assert sync.returncode == 0, sync.stdout + sync.stderr
    process = subprocess.Popen(
        [command("glimpse-api"), "--config-file", str(conf)],
        env=env,
        cwd=workdir,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    endpoint_id = None
    try:
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=2.0) as client:
            while True:
                assert process.poll() is None, f"glimpse-api exited: {stop(process)[1]}"
                assert time.monotonic() < deadline, f"glimpse-api did not start: {stop(process)}"
                try:
                    if client.get(f"{url}/versions").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        endpoint_id = _register(keystone, url)
        yield RegionTwo(url=url, port=port)
    finally:
        if endpoint_id is not None:
            keystone.admin.call("DELETE", f"/endpoints/{endpoint_id}")
        stop(process)


@pytest.fixture
def region_one_settings(
    make_settings: Any, keystone: KeystoneEnv, region_two: RegionTwo
) -> Settings:
    settings: Settings = make_settings(
        auth_strategy="keystone",
        enabled_import_methods=METHODS,
        keystone_authtoken=keystone.authtoken_section(),
        key_manager={"backend": "none", "token_encryption_key": Fernet.generate_key().decode()},
        # RegionTwo is on loopback: allowed by address and port, as an operator would.
        import_filtering_opts={
            "allowed_hosts": "127.0.0.1",
            "allowed_ports": str(region_two.port),
        },
    )
    return settings


@pytest.fixture
async def region_one(client_for: Any, region_one_settings: Settings) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(region_one_settings)
    return client


@pytest.fixture
async def worker(region_one_settings: Settings) -> Any:
    context = WorkerRuntime.build(region_one_settings)
    yield context
    await context.aclose()


@dataclass(frozen=True)
class Source:
    id: str
    data: bytes
    record: dict[str, Any]


def _remote_source(region_two: RegionTwo, token: str, disk_format: str = "raw") -> Source:
    """An active image on RegionTwo with properties some of which glance-download copies."""
    data = os.urandom(300 * 1024)
    headers = {"X-Auth-Token": token}
    with httpx.Client(base_url=region_two.url, headers=headers, timeout=30.0) as http:
        body = {
            "name": "source",
            "disk_format": disk_format,
            "container_format": "bare",
            "hw_cpu_cores": "5",
            "trait:STORAGE_DISK_SSD": "required",
            "os_distro": "rhel",
            "speed": "88mph",
        }
        created = http.post("/v2/images", json=body)
        assert created.status_code == 201, created.text
        image_id = created.json()["id"]
        uploaded = http.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)
        assert uploaded.status_code == 204, uploaded.text
        record = http.get(f"/v2/images/{image_id}").json()
    assert record["status"] == "active"
    return Source(image_id, data, record)


async def _target(client: httpx.AsyncClient, token: str) -> str:
    """A queued iso/ovf image on RegionOne with properties the import replaces or keeps."""
    body = {
        "name": "target",
        "disk_format": "iso",
        "container_format": "ovf",
        "hw_cpu_cores": "1",
        "os_distro": "windows",
    }
    created = await client.post("/v2/images", json=body, headers={"X-Auth-Token": token})
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def glance_download(image_id: str, region: str = "RegionTwo", **extra: str) -> dict[str, Any]:
    method = {"name": "glance-download", "glance_image_id": image_id, "glance_region": region}
    return {"method": {**method, **extra}}


async def _import(
    client: httpx.AsyncClient, worker: WorkerRuntime, token: str, image_id: str, body: Any
) -> dict[str, Any]:
    """Import `body` into `image_id`, run the job on the worker; the finished task."""
    headers = {"X-Auth-Token": token}
    response = await client.post(f"/v2/images/{image_id}/import", json=body, headers=headers)
    assert response.status_code == 202, response.text
    [task] = (await client.get(f"/v2/images/{image_id}/tasks", headers=headers)).json()["tasks"]
    assert "user_token" not in task["input"]
    await import_.run(worker, task["id"])
    shown = await client.get(f"/v2/images/{image_id}/tasks", headers=headers)
    [finished] = shown.json()["tasks"]
    assert "user_token" not in finished["input"]
    assert "glance_download_before" not in finished["input"]
    return dict(finished)


async def _stored_input(database: Database, task_id: str) -> dict[str, Any]:
    async with database.read() as session:
        task = await TaskRepository(session).get(task_id)
    assert task is not None
    return dict(task.input)


async def test_info_lists_glance_download(
    keystone: KeystoneEnv, region_one: httpx.AsyncClient
) -> None:
    headers = {"X-Auth-Token": keystone.token(keystone.alice)}
    info = (await region_one.get("/v2/info/import", headers=headers)).json()
    assert "glance-download" in info["import-methods"]["value"]


async def test_glance_download_imports_the_remote_image(
    keystone: KeystoneEnv,
    region_two: RegionTwo,
    region_one: httpx.AsyncClient,
    worker: WorkerRuntime,
    database: Database,
) -> None:
    token = keystone.token(keystone.alice)
    source = _remote_source(region_two, token)
    image_id = await _target(region_one, token)

    task = await _import(region_one, worker, token, image_id, glance_download(source.id))

    assert task["status"] == "success", task["message"]
    assert "user_token" not in await _stored_input(database, task["id"])
    headers = {"X-Auth-Token": token}
    image = (await region_one.get(f"/v2/images/{image_id}", headers=headers)).json()
    assert image["status"] == "active"
    assert (image["disk_format"], image["container_format"]) == ("raw", "bare")
    assert image["size"] == len(source.data) == source.record["size"]
    assert image["checksum"] == hashlib.md5(source.data).hexdigest() == source.record["checksum"]  # noqa: S324 -- Glance's checksum
    assert image["os_hash_algo"] == "sha512"
    assert image["os_hash_value"] == hashlib.sha512(source.data).hexdigest()
    assert image["os_hash_value"] == source.record["os_hash_value"]
    # The default extra_properties: hw_, trait:, os_distro, os_secure_boot, os_type.
    assert image["hw_cpu_cores"] == "5"
    assert image["trait:STORAGE_DISK_SSD"] == "required"
    assert image["os_distro"] == "rhel"
    assert "speed" not in image
    data = await region_one.get(f"/v2/images/{image_id}/file", headers=headers)
    assert data.status_code == 200
    assert data.content == source.data


@pytest.mark.parametrize(
    ("region", "remote", "expected"),
    [
        ("RegionTwo", "missing", "was not found in region RegionTwo"),
        ("nowhere", "source", "No public image service endpoint for region nowhere"),
    ],
)
async def test_a_failed_glance_download_leaves_the_image_queued(  # noqa: PLR0917 -- fixtures and parameters
    keystone: KeystoneEnv,
    region_two: RegionTwo,
    region_one: httpx.AsyncClient,
    worker: WorkerRuntime,
    database: Database,
    region: str,
    remote: str,
    expected: str,
) -> None:
    token = keystone.token(keystone.alice)
    remote_id = _remote_source(region_two, token).id if remote == "source" else str(uuid.uuid4())
    image_id = await _target(region_one, token)

    task = await _import(region_one, worker, token, image_id, glance_download(remote_id, region))

    assert task["status"] == "failure"
    assert expected in task["message"]
    assert "user_token" not in await _stored_input(database, task["id"])
    image = (await region_one.get(f"/v2/images/{image_id}", headers={"X-Auth-Token": token})).json()
    assert image["status"] == "queued"
    assert (image["disk_format"], image["container_format"]) == ("iso", "ovf")
    assert (image["hw_cpu_cores"], image["os_distro"]) == ("1", "windows")
    assert "os_glance_import_task" not in image


async def test_a_failure_after_the_fetch_puts_the_metadata_back(
    keystone: KeystoneEnv,
    region_two: RegionTwo,
    region_one: httpx.AsyncClient,
    worker: WorkerRuntime,
) -> None:
    # The data arrives and the image takes the remote metadata; then RegionOne's format
    # inspection refuses data that is not the qcow2 it claims to be, and the import reverts.
    token = keystone.token(keystone.alice)
    source = _remote_source(region_two, token, disk_format="qcow2")
    image_id = await _target(region_one, token)

    task = await _import(region_one, worker, token, image_id, glance_download(source.id))

    assert task["status"] == "failure"
    assert "qcow2" in task["message"]
    image = (await region_one.get(f"/v2/images/{image_id}", headers={"X-Auth-Token": token})).json()
    assert image["status"] == "queued"
    assert (image["disk_format"], image["container_format"]) == ("iso", "ovf")
    assert (image["hw_cpu_cores"], image["os_distro"]) == ("1", "windows")
    assert "trait:STORAGE_DISK_SSD" not in image


async def test_another_projects_image_is_not_found_remotely(
    keystone: KeystoneEnv,
    region_two: RegionTwo,
    region_one: httpx.AsyncClient,
    worker: WorkerRuntime,
) -> None:
    # Read with the caller's token: bob does not see alice's private image in RegionTwo.
    source = _remote_source(region_two, keystone.token(keystone.alice))
    token = keystone.token(keystone.bob)
    image_id = await _target(region_one, token)

    task = await _import(region_one, worker, token, image_id, glance_download(source.id))

    assert task["status"] == "failure"
    assert f"Image {source.id} was not found in region RegionTwo" in task["message"]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ({"glance_image_id": "foo", "glance_region": "RegionTwo"}, "does not look like a UUID"),
        ({"glance_region": "RegionTwo"}, "'glance_image_id' needs to be set"),
        ({"glance_image_id": str(uuid.uuid4())}, "'glance_region' needs to be set"),
    ],
)
async def test_glance_download_parameters_are_checked(
    keystone: KeystoneEnv,
    region_one: httpx.AsyncClient,
    method: dict[str, str],
    expected: str,
) -> None:
    token = keystone.token(keystone.alice)
    image_id = await _target(region_one, token)
    body = {"method": {"name": "glance-download", **method}}
    response = await region_one.post(
        f"/v2/images/{image_id}/import", json=body, headers={"X-Auth-Token": token}
    )
    assert response.status_code == 400
    assert expected in response.text
    image = (await region_one.get(f"/v2/images/{image_id}", headers={"X-Auth-Token": token})).json()
    assert image["status"] == "queued"
