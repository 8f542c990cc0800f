"""Interoperable import, glance-direct: stage, import, and the worker's pipeline run directly."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from factories import GLANCE_DIRECT, OCTET, image_tasks, sent_messages, staged_files, staged_image
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import utcnow
from glimpse.domain.imports import ImportTaskInput
from glimpse.jobs import names
from glimpse_worker.pipelines import import_, progress
from glimpse_worker.pipelines.inspection import survey_staged
from glimpse_worker.pipelines.prepare import Prepared
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.pipelines.sources import ImportJob
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OWNER, new_image, proxy_client


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[WorkerRuntime]:
    """What a worker process builds, around the test's settings."""
    context = WorkerRuntime.build(settings)
    yield context
    await context.aclose()


async def test_info_import_lists_the_configured_methods(
    client: httpx.AsyncClient, make_settings: Any, client_for: Any
) -> None:
    response = await client.get("/v2/info/import")
    assert response.status_code == 200
    assert response.json() == {
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": ["glance-direct", "web-download", "copy-image"],
        }
    }
    only = await client_for(make_settings(enabled_import_methods="[web-download]"))
    assert (await only.get("/v2/info/import")).json()["import-methods"]["value"] == ["web-download"]


async def start_import_as_owner(
    client: httpx.AsyncClient, image_id: str, settings: Settings
) -> dict[str, Any]:
    """POST /import as the owner; check the image, its lock, the task row and the message."""
    response = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT, headers=OWNER)
    assert response.status_code == 202, response.text
    importing = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert importing["status"] == "importing"
    [task] = await image_tasks(client, image_id, OWNER)
    assert importing["os_glance_import_task"] == task["id"]
    assert importing["os_glance_importing_to_stores"] == "file"
    assert task["status"] == "pending"
    assert task["type"] == "api_image_import"
    assert task["owner"] == "owner"
    assert task["user_id"] == "alice"
    assert task["input"]["import_req"]["method"] == {"name": "glance-direct"}
    # The message carries the task id and nothing else.
    assert sent_messages(settings) == [(names.IMPORT, [task["id"]])]
    # A second import meets the lock.
    again = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT, headers=OWNER)
    assert again.status_code == 409
    # The member may not use the Tasks API (admin by default), yet its import runs.
    assert (await client.get("/v2/tasks", headers=OWNER)).status_code == 403
    assert (await client.get(f"/v2/tasks/{task['id']}", headers=OWNER)).status_code == 403
    return task


async def test_glance_direct_end_to_end_as_a_project_member(
    make_settings: Any, client_for: Any, settings: Settings, database: Database
) -> None:
    client = await proxy_client(make_settings, client_for)
    data = os.urandom(3 * 1024 * 1024 + 5)
    image_id = await staged_image(client, data, OWNER)
    staged = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert staged["status"] == "uploading"
    assert staged["size"] == len(data)
    assert [p.name for p in staged_files(settings)] == [image_id]

    task = await start_import_as_owner(client, image_id, settings)

    context = WorkerRuntime.build(settings)
    try:
        await import_.run(context, task["id"])
        active = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
        assert active["status"] == "active"
        assert active["size"] == len(data)
        assert active["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
        assert active["os_hash_algo"] == "sha512"
        assert active["os_hash_value"] == hashlib.sha512(data).hexdigest()
        assert active["virtual_size"] == len(data)
        assert "os_glance_import_task" not in active
        # As in Glance, the progress keys stay, empty, once the import is done.
        assert active["os_glance_importing_to_stores"] == ""
        assert active["os_glance_failed_import"] == ""
        download = await client.get(f"/v2/images/{image_id}/file", headers=OWNER)
        assert download.content == data
        assert staged_files(settings) == []
        shown = (await client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).json()
        assert shown["status"] == "success"
        assert shown["result"] == {"image_id": image_id, "stores": ["file"], "failed": []}
        assert shown["expires_at"] is not None
        assert shown["message"] == "Copied 3 MiB"  # the last progress report
        # A redelivered message finds the task finished and changes nothing.
        await import_.run(context, task["id"])
        assert (await client.get(f"/v2/tasks/{task['id']}", headers=ADMIN)).json() == shown
        async with database.read() as session:
            count = await session.scalar(
                sa.text("SELECT count(*) FROM image_locations WHERE image_id = :i"),
                {"i": image_id},
            )
        assert count == 1
    finally:
        await context.aclose()


async def test_stage_refuses_data_past_the_size_cap(
    make_settings: Any, client_for: Any, settings: Settings
) -> None:
    client = await client_for(make_settings(image_size_cap=1024 * 1024))
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    response = await client.put(
        f"/v2/images/{image_id}/stage", content=b"x" * (2 * 1024 * 1024), headers=OCTET
    )
    assert response.status_code == 413
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "queued"
    assert image["size"] is None
    assert staged_files(settings) == []


async def test_stage_refuses_data_past_the_storage_quota(
    make_settings: Any, client_for: Any, settings: Settings
) -> None:
    client = await client_for(make_settings(user_storage_quota="1MB"))
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    response = await client.put(
        f"/v2/images/{image_id}/stage", content=b"x" * (2 * 1024 * 1024), headers=OCTET
    )
    assert response.status_code == 413
    assert "quota" in response.json()["message"]
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "queued"
    assert staged_files(settings) == []


async def test_stage_only_takes_a_queued_image(client: httpx.AsyncClient) -> None:
    image_id = await staged_image(client, b"once")
    again = await client.put(f"/v2/images/{image_id}/stage", content=b"twice", headers=OCTET)
    assert again.status_code == 409


async def test_stage_is_not_found_without_glance_direct(
    make_settings: Any, client_for: Any
) -> None:
    client = await client_for(make_settings(enabled_import_methods="web-download"))
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    response = await client.put(f"/v2/images/{image_id}/stage", content=b"x", headers=OCTET)
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"method": {"name": "web-download", "uri": "ftp://example.com/x"}}, 400),
        ({"method": {"name": "copy-image"}}, 409),  # only an active image is copied
        ({"method": {"name": "glance-download"}}, 400),
        ({"method": {}}, 400),
        ({}, 400),
    ],
)
async def test_import_refuses_what_it_cannot_run(
    client: httpx.AsyncClient, body: dict[str, Any], status: int
) -> None:
    image_id = await staged_image(client, b"data")
    response = await client.post(f"/v2/images/{image_id}/import", json=body)
    assert response.status_code == status, response.text
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "uploading"
    assert await image_tasks(client, image_id) == []


async def test_import_refuses_a_body_nested_past_the_decoder(client: httpx.AsyncClient) -> None:
    # The decoder's RecursionError is no ValueError: it was a 500.
    image_id = await staged_image(client, b"data")
    nested = b"[" * 100_000 + b"]" * 100_000
    response = await client.post(
        f"/v2/images/{image_id}/import",
        content=nested,
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400, response.text
    assert response.json()["message"] == "JSON in the request body may nest at most 32 levels."
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "uploading"
    assert await image_tasks(client, image_id) == []


async def test_import_needs_staged_data(client: httpx.AsyncClient) -> None:
    image_id = await new_image(client, {}, disk_format="raw", container_format="bare")
    response = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    assert response.status_code == 409
    assert await image_tasks(client, image_id) == []


async def test_failed_import_returns_the_image_to_queued(
    client: httpx.AsyncClient, settings: Settings, worker: WorkerRuntime
) -> None:
    image_id = await staged_image(client, b"will vanish")
    assert (
        await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    ).status_code == 202
    [task] = await image_tasks(client, image_id)
    for path in staged_files(settings):
        path.unlink()  # the staged data is lost
    await import_.run(worker, task["id"])
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "queued"
    assert image["size"] is None
    assert "os_glance_import_task" not in image
    assert image["os_glance_importing_to_stores"] == ""
    [failed] = await image_tasks(client, image_id)
    assert failed["status"] == "failure"
    assert failed["message"]
    assert failed["expires_at"] is not None
    # The image takes data again.
    response = await client.put(f"/v2/images/{image_id}/stage", content=b"again", headers=OCTET)
    assert response.status_code == 204


async def test_import_into_every_store(make_settings: Any, client_for: Any, tmp_path: Path) -> None:
    settings = make_settings(
        enabled_backends="fast:file, cheap:file",
        stores={
            "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
            "cheap": {"filesystem_store_datadir": str(tmp_path / "cheap")},
        },
    )
    client = await client_for(settings)
    data = b"everywhere" * 1000
    image_id = await staged_image(client, data)
    body = {**GLANCE_DIRECT, "all_stores": True}
    assert (await client.post(f"/v2/images/{image_id}/import", json=body)).status_code == 202
    [task] = await image_tasks(client, image_id)
    context = WorkerRuntime.build(settings)
    try:
        await import_.run(context, task["id"])
    finally:
        await context.aclose()
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "active"
    assert image["stores"] == "cheap,fast"
    assert (image["os_glance_importing_to_stores"], image["os_glance_failed_import"]) == ("", "")
    for store in ("fast", "cheap"):
        assert (tmp_path / store / image_id).read_bytes() == data
        download = await client.get(f"/v2/images/{image_id}/file?prefer={store}")
        assert download.content == data


async def test_the_hashing_pass_renews_the_lease(
    client: httpx.AsyncClient,
    settings: Settings,
    worker: WorkerRuntime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long pass over the staged data (a huge image) must keep the task's lease, or another
    worker would take the task over while this one still works on it."""
    data = os.urandom(3 * 1024 * 1024 + 1)
    image_id = await staged_image(client, data)
    assert (
        await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    ).status_code == 202
    [task] = await image_tasks(client, image_id)
    ended = utcnow() - timedelta(seconds=1)
    async with worker.database.write() as session:
        await session.execute(
            sa.text(
                "UPDATE tasks SET status = 'processing', lease_until = :ended,"
                " message = 'Copied 7 MiB' WHERE id = :id"
            ),
            {"ended": ended, "id": task["id"]},
        )
    async with worker.database.read() as session:
        task_row = await TaskRepository(session).get(task["id"])
        image = await ImageRepository(session).get(image_id)
    assert task_row is not None
    assert image is not None
    monkeypatch.setattr(progress, "PROGRESS_SECONDS", 0.0)  # renew on every block
    job = ImportJob(
        runtime=worker,
        task=task_row,
        image=image,
        properties={},
        task_input=ImportTaskInput.from_task(task_row.type, task_row.input),
        staged=worker.stores.staging.location_for(image_id),
        progress=Progress(worker, task["id"]),
    )
    meter = await survey_staged(job, Prepared("raw", "bare"))
    assert meter.size == len(data)
    async with worker.database.read() as session:
        renewed = await TaskRepository(session).get(task["id"])
    assert renewed is not None
    assert renewed.lease_until is not None
    assert renewed.lease_until > utcnow() + timedelta(seconds=settings.task.lease_time - 60)
    assert renewed.message == "Copied 7 MiB"  # renewed, not reported


@pytest.fixture
async def multistore_client(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> httpx.AsyncClient:
    settings = make_settings(
        enabled_backends="fast:file, cheap:file, web:http",
        glance_store={"default_backend": "fast"},
        stores={
            "fast": {"filesystem_store_datadir": str(tmp_path / "fast")},
            "cheap": {"filesystem_store_datadir": str(tmp_path / "cheap")},
        },
    )
    client: httpx.AsyncClient = await client_for(settings)
    return client


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        # Glance's store layer raises UnknownScheme, which its import maps to 409.
        ({"stores": ["nowhere"]}, {}, 409, "Store for identifier nowhere not found"),
        ({"stores": ["fast", "nowhere"]}, {}, 409, "Store for identifier nowhere not found"),
        ({}, {"X-Image-Meta-Store": "nowhere"}, 409, "Store for identifier nowhere not found"),
        ({"stores": ["web"]}, {}, 400, "read-only"),
        ({"stores": ["fast"]}, {"X-Image-Meta-Store": "fast"}, 400, "Only one"),
        ({"all_stores": True}, {"X-Image-Meta-Store": "fast"}, 400, "all_stores"),
    ],
)
async def test_import_to_stores_that_are_not_there(
    multistore_client: httpx.AsyncClient,
    body: dict[str, Any],
    headers: dict[str, str],
    status: int,
    message: str,
) -> None:
    client = multistore_client
    image_id = await staged_image(client, b"data")
    response = await client.post(
        f"/v2/images/{image_id}/import", json={**GLANCE_DIRECT, **body}, headers=headers
    )
    assert response.status_code == status, response.text
    assert message in response.json()["message"]
    image = (await client.get(f"/v2/images/{image_id}")).json()
    assert image["status"] == "uploading"
    assert "os_glance_import_task" not in image
    assert await image_tasks(client, image_id) == []


async def test_single_store_import_ignores_the_stores_named(client: httpx.AsyncClient) -> None:
    """Without enabled_backends Glance imports into its one store whatever `stores` and
    X-Image-Meta-Store say."""
    for body, headers in (
        ({"stores": ["nowhere"]}, {}),
        ({}, {"X-Image-Meta-Store": "nowhere"}),
    ):
        image_id = await staged_image(client, b"data")
        response = await client.post(
            f"/v2/images/{image_id}/import", json={**GLANCE_DIRECT, **body}, headers=headers
        )
        assert response.status_code == 202, response.text
        [task] = await image_tasks(client, image_id)
        assert task["status"] == "pending"
        image = (await client.get(f"/v2/images/{image_id}")).json()
        assert image["status"] == "importing"
        assert "stores" not in image
