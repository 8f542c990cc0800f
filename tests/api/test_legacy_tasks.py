"""POST /v2/tasks, type `import`: a new image filled from a URL by the import pipeline."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from factories import sent_messages
from glimpse.config import Settings
from glimpse.config.reserved import STAGING_STORE
from glimpse.jobs import names
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OWNER, proxy_client
from store_servers import HttpServer

PROPERTIES = {"name": "from-task", "disk_format": "raw", "container_format": "bare", "os_x": "1"}


def import_task(uri: object, **changes: Any) -> dict[str, Any]:
    task_input = {"import_from": uri, "import_from_format": "raw", "image_properties": PROPERTIES}
    return {"type": "import", "input": {**task_input, **changes}}


@pytest.fixture
def legacy_settings(make_settings: Any, http_server: HttpServer) -> Settings:
    settings: Settings = make_settings(
        auth_strategy="trusted-proxy",
        import_filtering_opts={
            "allowed_hosts": "localhost",
            "allowed_ports": str(urlsplit(http_server.base).port),
        },
    )
    return settings


@pytest.fixture
async def legacy_client(client_for: Any, legacy_settings: Settings) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(legacy_settings)
    return client


def source(server: HttpServer, name: str) -> str:
    return f"http://localhost:{urlsplit(server.base).port}/files/{name}"


def staged_files(settings: Settings) -> list[Path]:
    datadir = settings.store_datadir(STAGING_STORE)
    return sorted(datadir.iterdir()) if datadir.exists() else []


async def run_worker(settings: Settings, task_id: str) -> None:
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task_id)
    finally:
        await worker.aclose()


async def test_an_import_task_creates_and_fills_an_image(
    legacy_client: httpx.AsyncClient, legacy_settings: Settings, http_server: HttpServer
) -> None:
    data = os.urandom(2 * 1024 * 1024 + 9)
    (http_server.root / "disk.raw").write_bytes(data)
    body = import_task(source(http_server, "disk.raw"))
    response = await legacy_client.post("/v2/tasks", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    task = response.json()
    assert response.headers["Location"] == f"/v2/tasks/{task['id']}"
    assert task["type"] == "import"
    assert task["status"] == "pending"
    assert task["input"] == body["input"]
    assert task["owner"] == "ops"
    assert task["user_id"] == "root"
    assert task["self"] == f"/v2/tasks/{task['id']}"
    assert sent_messages(legacy_settings) == [(names.IMPORT, [task["id"]])]
    image_id = task["image_id"]
    image = (await legacy_client.get(f"/v2/images/{image_id}", headers=ADMIN)).json()
    assert image["status"] == "importing"
    assert image["owner"] == "ops"
    assert image["name"] == "from-task"
    assert image["os_x"] == "1"
    assert image["os_glance_import_task"] == task["id"]

    await run_worker(legacy_settings, task["id"])

    image = (await legacy_client.get(f"/v2/images/{image_id}", headers=ADMIN)).json()
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    download = await legacy_client.get(f"/v2/images/{image_id}/file", headers=ADMIN)
    assert download.content == data
    done = (await legacy_client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).json()
    assert done["status"] == "success"
    assert done["result"] == {"image_id": image_id, "stores": ["file"], "failed": []}
    assert done["input"] == body["input"]
    assert staged_files(legacy_settings) == []


async def test_a_failed_import_task_removes_its_image(
    legacy_client: httpx.AsyncClient, legacy_settings: Settings, http_server: HttpServer
) -> None:
    uri = source(http_server, "missing.raw")
    response = await legacy_client.post("/v2/tasks", json=import_task(uri), headers=ADMIN)
    assert response.status_code == 201, response.text
    task = response.json()
    await run_worker(legacy_settings, task["id"])
    failed = (await legacy_client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).json()
    assert failed["status"] == "failure"
    assert failed["message"] == f"Download of {uri} failed: the server answered 404"
    gone = await legacy_client.get(f"/v2/images/{task['image_id']}", headers=ADMIN)
    assert gone.status_code == 404
    assert staged_files(legacy_settings) == []


async def test_the_tasks_api_is_for_admins_by_default(
    legacy_client: httpx.AsyncClient, http_server: HttpServer
) -> None:
    body = import_task(source(http_server, "disk.raw"))
    response = await legacy_client.post("/v2/tasks", json=body, headers=OWNER)
    assert response.status_code == 403
    assert (await legacy_client.get("/v2/images", headers=OWNER)).json()["images"] == []


async def test_add_task_is_enforced(
    make_settings: Any, client_for: Any, tmp_path: Path, http_server: HttpServer
) -> None:
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text('"tasks_api_access": "role:member"\n"add_task": "role:admin"\n')
    client = await proxy_client(
        make_settings,
        client_for,
        oslo_policy={"policy_file": str(policy_file)},
        import_filtering_opts={
            "allowed_hosts": "localhost",
            "allowed_ports": str(urlsplit(http_server.base).port),
        },
    )
    body = import_task(source(http_server, "disk.raw"))
    assert (await client.post("/v2/tasks", json=body, headers=OWNER)).status_code == 403
    assert (await client.get("/v2/images", headers=OWNER)).json()["images"] == []
    assert (await client.post("/v2/tasks", json=body, headers=ADMIN)).status_code == 201


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": {}}, "Task 'type' is required"),
        ({"type": "import"}, "Task 'input' is required"),
        ({"type": "export", "input": {}}, "'export' is not one of"),
        ({"type": "import", "input": {}, "colour": "red"}, "Additional properties"),
        ({"type": "api_image_import", "input": {"image_id": "x"}}, "cannot be created"),
        ({"type": "import", "input": "http://x"}, "'input' must be an object"),
        (import_task(None), "Invalid location: None"),
        (import_task("file:///etc/passwd"), "File based imports are not allowed"),
        (import_task("ftp://example.com/x"), "The given uri is not valid"),
        (import_task("http://127.0.0.1/x"), "does not pass filtering: http://127.0.0.1/x"),
        (import_task("http://169.254.169.254/latest/"), "does not pass filtering"),
        (import_task("http://2130706433/x"), "does not pass filtering"),
        ({"type": "import", "input": {"import_from": "LOCAL"}}, "'import_from_format'"),
        (import_task("LOCAL", image_properties="raw"), "must be an object"),
        (import_task("LOCAL", image_properties={"name": "x"}), "disk_format"),
        (import_task("LOCAL", image_properties={**PROPERTIES, "disk_format": "exe"}), "exe"),
    ],
)
async def test_bad_task_requests_are_refused(
    legacy_client: httpx.AsyncClient, http_server: HttpServer, body: dict[str, Any], message: str
) -> None:
    # LOCAL stands for a URL that passes the filter, so the other checks are reached.
    task_input = body.get("input")
    if isinstance(task_input, dict) and task_input.get("import_from") == "LOCAL":
        body = {**body, "input": {**task_input, "import_from": source(http_server, "x")}}
    response = await legacy_client.post("/v2/tasks", json=body, headers=ADMIN)
    assert response.status_code == 400, response.text
    assert message in response.json()["message"]
    assert (await legacy_client.get("/v2/images", headers=ADMIN)).json()["images"] == []
    assert (await legacy_client.get("/v2/tasks", headers=ADMIN)).json()["tasks"] == []


async def test_a_body_that_is_not_json_is_refused(legacy_client: httpx.AsyncClient) -> None:
    response = await legacy_client.post("/v2/tasks", content=b"{nope", headers=ADMIN)
    assert response.status_code == 400
    assert response.json()["message"] == "Body expected in request."


async def test_a_task_never_shows_the_credentials_of_its_url(
    legacy_client: httpx.AsyncClient, http_server: HttpServer
) -> None:
    port = urlsplit(http_server.base).port
    uri = f"https://dave:hunter2@localhost:{port}/files/disk.raw?sig=f00dcafe&token=abc123"
    created = await legacy_client.post("/v2/tasks", json=import_task(uri), headers=ADMIN)
    assert created.status_code == 201, created.text
    shown = await legacy_client.get(f"/v2/tasks/{created.json()['id']}", headers=ADMIN)
    for view in (created.json(), shown.json()):
        assert view["input"] == {
            "import_from": f"https://***@localhost:{port}/files/disk.raw?sig=***&token=***",
            "import_from_format": "raw",
            "image_properties": PROPERTIES,
        }
    refused = await legacy_client.post(
        "/v2/tasks",
        json=import_task("http://dave:hunter2@169.254.169.254/?sig=f00dcafe"),
        headers=ADMIN,
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "URI for legacy import task does not pass filtering: http://***@169.254.169.254/?sig=***"
    )


@pytest.mark.parametrize("problem", ["nested", "nul", "surrogate"])
async def test_a_body_no_database_stores_is_refused(
    legacy_client: httpx.AsyncClient, http_server: HttpServer, problem: str
) -> None:
    # A NUL (PostgreSQL refuses it in text), a lone surrogate (no encoder takes it) or deep
    # nesting (the answer's serializer gives up) in what the task stores: each was a 500.
    task_input: dict[str, Any] = {
        "import_from": source(http_server, "x"),
        "import_from_format": "raw",
        "image_properties": {"disk_format": "raw", "container_format": "bare"},
    }
    if problem == "nested":
        task_input["extra"] = functools.reduce(lambda inner, _: [inner], range(100), [])
    else:
        task_input["image_properties"]["name"] = "\x00" if problem == "nul" else "\ud800"
    body = json.dumps({"type": "import", "input": task_input}).encode()
    response = await legacy_client.post(
        "/v2/tasks", content=body, headers={**ADMIN, "Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "Body expected in request."
    assert (await legacy_client.get("/v2/images", headers=ADMIN)).json()["images"] == []
    assert (await legacy_client.get("/v2/tasks", headers=ADMIN)).json()["tasks"] == []
