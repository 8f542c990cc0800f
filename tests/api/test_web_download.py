"""Interoperable import, web-download: admission by the URL filter, and the worker's fetch
from a real HTTP server on loopback (allowed by name through [import_filtering_opts])."""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import sqlalchemy as sa

from glimpse.config import Settings
from glimpse.config.reserved import STAGING_STORE
from glimpse.db.engine import Database
from glimpse.db.tables import Image
from glimpse.logs import ContextFilter
from glimpse_worker.pipelines import import_
from glimpse_worker.pipelines.download import DownloadFailed, download
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OTHER, OWNER, new_image
from store_servers import HttpServer

OCTET = {"Content-Type": "application/octet-stream"}


def web_download(uri: str) -> dict[str, Any]:
    return {"method": {"name": "web-download", "uri": uri}}


def staged_files(settings: Settings) -> list[Path]:
    datadir = settings.store_datadir(STAGING_STORE)
    return sorted(datadir.iterdir()) if datadir.exists() else []


def local_base(server: HttpServer) -> str:
    """The server by name: only `localhost` is allow-listed, never the loopback address."""
    return f"http://localhost:{urlsplit(server.base).port}"


@pytest.fixture
def web_settings(make_settings: Any, http_server: HttpServer) -> Settings:
    settings: Settings = make_settings(
        import_filtering_opts={
            "allowed_hosts": "localhost",
            "allowed_ports": str(urlsplit(http_server.base).port),
        }
    )
    return settings


@pytest.fixture
async def web_client(client_for: Any, web_settings: Settings) -> httpx.AsyncClient:
    client: httpx.AsyncClient = await client_for(web_settings)
    return client


@pytest.fixture
async def web_worker(web_settings: Settings) -> AsyncIterator[WorkerRuntime]:
    context = WorkerRuntime.build(web_settings)
    yield context
    await context.aclose()


async def start(client: httpx.AsyncClient, uri: str) -> tuple[str, dict[str, Any]]:
    """A new raw image and its web-download import from `uri`: (image id, task)."""
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    response = await client.post(f"/v2/images/{image_id}/import", json=web_download(uri))
    assert response.status_code == 202, response.text
    [task] = (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
    return image_id, task


async def location_count(database: Database, image_id: str) -> int:
    async with database.read() as session:
        count = await session.scalar(
            sa.text("SELECT count(*) FROM image_locations WHERE image_id = :i"), {"i": image_id}
        )
    return int(count or 0)


async def assert_failed_and_queued(
    client: httpx.AsyncClient, database: Database, settings: Settings, image_id: str
) -> str:
    """The task failed, the image is queued again without data or lock; the task message."""
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "queued"
    assert image["size"] is None
    assert "os_glance_import_task" not in image
    assert staged_files(settings) == []
    assert await location_count(database, image_id) == 0
    [task] = (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
    assert task["status"] == "failure"
    message: str = task["message"]
    return message


async def test_web_download_imports_the_served_bytes(
    web_client: httpx.AsyncClient,
    web_worker: WorkerRuntime,
    web_settings: Settings,
    http_server: HttpServer,
) -> None:
    data = os.urandom(3 * 1024 * 1024 + 7)
    (http_server.root / "disk.raw").write_bytes(data)
    # Through one redirect on the same allowed server.
    uri = f"{local_base(http_server)}/redirect/1/disk.raw"
    image_id, task = await start(web_client, uri)
    importing = (await web_client.get(f"/v2/images/{image_id}")).json()
    assert importing["status"] == "importing"
    assert importing["os_glance_import_task"] == task["id"]
    assert task["input"]["import_req"]["method"] == {"name": "web-download", "uri": uri}

    await import_.run(web_worker, task["id"])

    image = (await web_client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert (await web_client.get(f"/v2/images/{image_id}/file")).content == data
    assert staged_files(web_settings) == []
    [done] = (await web_client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"]
    assert done["status"] == "success"
    assert done["message"] == "Copied 3 MiB"  # the copy into the store, not the download too


async def test_a_retried_fetch_replaces_what_an_earlier_run_left(
    web_client: httpx.AsyncClient,
    web_worker: WorkerRuntime,
    web_settings: Settings,
    http_server: HttpServer,
) -> None:
    data = os.urandom(1024 * 1024 + 3)
    (http_server.root / "disk.raw").write_bytes(data)
    image_id, task = await start(web_client, f"{local_base(http_server)}/files/disk.raw")
    # A run that died after staging something else (an older copy of the source).
    staging = web_settings.store_datadir(STAGING_STORE)
    staging.mkdir(parents=True, exist_ok=True)
    (staging / image_id).write_bytes(b"stale")
    await import_.run(web_worker, task["id"])
    image = (await web_client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "active"
    assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert (await web_client.get(f"/v2/images/{image_id}/file")).content == data


@pytest.mark.parametrize(
    "uri",
    [
        "http://127.0.0.1/x",  # loopback
        "http://[::1]/x",  # loopback, IPv6
        "http://[::ffff:127.0.0.1]/x",  # loopback inside an IPv4-mapped address
        "http://localhost/x",  # a name for loopback
        "http://169.254.169.254/latest/meta-data/",  # the metadata service
        "http://2130706433/x",  # 127.0.0.1 as one decimal number
        "http://0x7f000001/x",  # ... in hex
        "http://017700000001/x",  # ... in octal
        "http://0177.0.0.1/x",  # dotted octal
        "http://0x7f.0.0.1/x",  # dotted hex
        "http://127.1/x",  # short form
        "file:///etc/passwd",
        "ftp://example.com/image.raw",
        "gopher://example.com/x",
        "http:///x",  # no host
        "",
        None,
    ],
)
async def test_web_download_refuses_uris_the_filter_refuses(
    client: httpx.AsyncClient, uri: str | None
) -> None:
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    method: dict[str, Any] = {"name": "web-download"}
    if uri is not None:
        method["uri"] = uri
    response = await client.post(f"/v2/images/{image_id}/import", json={"method": method})
    assert response.status_code == 400, response.text
    assert response.json()["message"] == f"URI for web-download does not pass filtering: {uri}"
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
    assert (await client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"] == []


async def test_only_allow_listed_hosts_pass(
    web_client: httpx.AsyncClient, http_server: HttpServer
) -> None:
    # The server's own address is not what was allowed: the name is.
    port = urlsplit(http_server.base).port
    image_id = await new_image(web_client, {}, disk_format="raw", container_format="bare")
    for uri in (f"http://127.0.0.1:{port}/files/x", f"http://localhost:{port + 1}/files/x"):
        response = await web_client.post(f"/v2/images/{image_id}/import", json=web_download(uri))
        assert response.status_code == 400, uri
    assert (await web_client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"


async def test_web_download_needs_a_queued_image(
    web_client: httpx.AsyncClient, http_server: HttpServer
) -> None:
    image_id = await new_image(web_client, {}, disk_format="raw", container_format="bare")
    staged = await web_client.put(f"/v2/images/{image_id}/stage", content=b"x", headers=OCTET)
    assert staged.status_code == 204
    uri = f"{local_base(http_server)}/files/disk.raw"
    response = await web_client.post(f"/v2/images/{image_id}/import", json=web_download(uri))
    assert response.status_code == 409
    assert "queued" in response.json()["message"]
    assert (await web_client.get(f"/v2/images/{image_id}")).json()["status"] == "uploading"
    assert (await web_client.get(f"/v2/images/{image_id}/tasks")).json()["tasks"] == []


@dataclass(frozen=True)
class Web:
    """An API client, a worker and the HTTP server, on settings that allow that server."""

    client: httpx.AsyncClient
    worker: WorkerRuntime
    settings: Settings
    database: Database
    server: HttpServer

    async def failed_and_queued(self, image_id: str) -> str:
        return await assert_failed_and_queued(self.client, self.database, self.settings, image_id)


@pytest.fixture
def web(
    web_client: httpx.AsyncClient,
    web_worker: WorkerRuntime,
    web_settings: Settings,
    database: Database,
    http_server: HttpServer,
) -> Web:
    return Web(web_client, web_worker, web_settings, database, http_server)


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:{port}/files/disk.raw", "http://169.254.169.254/latest/meta-data/"],
)
async def test_a_redirect_to_a_private_address_fails_the_fetch(web: Web, target: str) -> None:
    (web.server.root / "disk.raw").write_bytes(b"secret" * 1000)
    redirect_to = target.format(port=urlsplit(web.server.base).port)
    uri = f"{local_base(web.server)}/to/{redirect_to}"
    image_id, task = await start(web.client, uri)  # the first hop is allowed
    await import_.run(web.worker, task["id"])
    message = await web.failed_and_queued(image_id)
    assert message.startswith(f"Download of {uri} refused:")
    assert redirect_to in message


async def test_a_download_past_the_size_cap_fails(
    make_settings: Any, client_for: Any, database: Database, http_server: HttpServer
) -> None:
    settings = make_settings(
        image_size_cap=1024 * 1024,
        import_filtering_opts={
            "allowed_hosts": "localhost",
            "allowed_ports": str(urlsplit(http_server.base).port),
        },
    )
    client = await client_for(settings)
    (http_server.root / "big.raw").write_bytes(b"b" * (2 * 1024 * 1024 + 1))
    image_id, task = await start(client, f"{local_base(http_server)}/files/big.raw")
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    message = await assert_failed_and_queued(client, database, settings, image_id)
    assert message == f"The incoming image is too large: image_size_cap is {1024 * 1024} bytes"


@pytest.mark.parametrize(("path", "status"), [("files/missing.raw", 404), ("status/500/x", 500)])
async def test_a_source_that_answers_an_error_fails_the_fetch(
    web: Web, path: str, status: int
) -> None:
    uri = f"{local_base(web.server)}/{path}"
    image_id, task = await start(web.client, uri)
    await import_.run(web.worker, task["id"])
    message = await web.failed_and_queued(image_id)
    assert message == f"Download of {uri} failed: the server answered {status}"
    # The image takes another import.
    (web.server.root / "disk.raw").write_bytes(b"second try")
    again = f"{local_base(web.server)}/files/disk.raw"
    response = await web.client.post(f"/v2/images/{image_id}/import", json=web_download(again))
    assert response.status_code == 202


async def test_web_download_credentials_never_reach_tasks_or_logs(
    make_settings: Any,
    client_for: Any,
    http_server: HttpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A URI's userinfo and signature are shown as ***, in every task view, in the task's
    message and in the log; the image's tasks are its project's (as in Glance), so another
    project that sees the image sees none of them, nor their user or roles."""
    caplog.set_level(logging.DEBUG)
    caplog.handler.addFilter(ContextFilter())  # what every handler of the services carries
    port = urlsplit(http_server.base).port
    settings = make_settings(
        auth_strategy="trusted-proxy",
        import_filtering_opts={"allowed_hosts": "localhost", "allowed_ports": str(port)},
    )
    client = await client_for(settings)
    (http_server.root / "disk.raw").write_bytes(b"signed download " * 512)
    secret = f"http://carol:hunter2@localhost:{port}/files/{{}}?X-Amz-Signature=f00dcafe&v=2"
    shown = f"http://***@localhost:{port}/files/{{}}?X-Amz-Signature=***&v=2"
    worker = WorkerRuntime.build(settings)
    try:
        for name, outcome in (("disk.raw", "success"), ("missing.raw", "failure")):
            body = {"disk_format": "raw", "container_format": "bare", "visibility": "public"}
            image_id = await new_image(client, ADMIN, owner="owner", **body)
            started = await client.post(
                f"/v2/images/{image_id}/import",
                json=web_download(secret.format(name)),
                headers=OWNER,
            )
            assert started.status_code == 202, started.text
            [task] = (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()[
                "tasks"
            ]
            await import_.run(worker, task["id"])

            # Another project sees the public image, and none of its owner's tasks.
            assert (await client.get(f"/v2/images/{image_id}", headers=OTHER)).status_code == 200
            theirs = await client.get(f"/v2/images/{image_id}/tasks", headers=OTHER)
            assert theirs.json() == {"tasks": []}
            views = [
                (await client.get(f"/v2/images/{image_id}/tasks", headers=OWNER)).json()["tasks"][
                    0
                ],
                (await client.get(f"/v2/images/{image_id}/tasks", headers=ADMIN)).json()["tasks"][
                    0
                ],
                (await client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).json(),
            ]
            for view in views:
                assert view["status"] == outcome
                assert view["user_id"] == "alice"  # shown to the task's project, as in Glance
                assert view["input"] == {
                    "image_id": image_id,
                    "import_req": {
                        "method": {"name": "web-download", "uri": shown.format(name)},
                        "stores": ["file"],
                        "all_stores_must_succeed": True,
                    },
                    "backend": ["file"],
                }
            if outcome == "failure":
                assert views[0]["message"] == (
                    f"Download of {shown.format(name)} failed: the server answered 404"
                )
    finally:
        await worker.aclose()
    for leaked in ("hunter2", "f00dcafe"):
        assert leaked not in caplog.text
    assert "files/missing.raw" in caplog.text  # logged, redacted


async def test_a_download_with_headers_follows_no_redirect(
    web_worker: WorkerRuntime, http_server: HttpServer
) -> None:
    # glance-download sends the caller's token: a redirect must not carry it elsewhere.
    (http_server.root / "disk.raw").write_bytes(b"data" * 1000)
    image = Image(id=str(uuid.uuid4()), owner="p", status="importing")
    uri = f"{local_base(http_server)}/redirect/1/disk.raw"
    with pytest.raises(DownloadFailed, match="the server answered 302"):
        await download(
            web_worker,
            image,
            uri,
            Progress(web_worker, str(uuid.uuid4())),
            headers={"X-Auth-Token": "token"},
        )
    assert staged_files(web_worker.settings) == []
