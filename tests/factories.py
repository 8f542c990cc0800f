"""Builders and checks that several test modules share: images made over HTTP, staged data,
broker messages, store sections, the app's routes, and glance-direct imports run through the
worker's pipeline in-process. Test modules import from here, never from each other."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx
from fastapi import FastAPI

from glimpse.config import Settings
from glimpse.config.reserved import STAGING_STORE
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OWNER, new_image

OCTET: Final = {"Content-Type": "application/octet-stream"}
PATCH_21: Final = {"Content-Type": "application/openstack-images-v2.1-json-patch"}
GLANCE_DIRECT: Final = {"method": {"name": "glance-direct"}}
# One file store named `file`: the settings under which the app serves its multistore routes too.
MULTISTORE: Final = {"enabled_backends": "file:file"}


# -- images over HTTP ------------------------------------------------------------------------


async def create(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    body.setdefault("disk_format", "raw")
    body.setdefault("container_format", "bare")
    response = await client.post("/v2/images", json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def upload(client: httpx.AsyncClient, image_id: str, data: Any) -> httpx.Response:
    return await client.put(f"/v2/images/{image_id}/file", content=data, headers=OCTET)


async def staged_image(
    client: httpx.AsyncClient, data: bytes, headers: dict[str, str] | None = None
) -> str:
    headers = headers or {}
    image_id = await new_image(client, headers, disk_format="raw", container_format="bare")
    response = await client.put(
        f"/v2/images/{image_id}/stage", content=data, headers={**headers, **OCTET}
    )
    assert response.status_code == 204, response.text
    return image_id


async def image_tasks(
    client: httpx.AsyncClient, image_id: str, headers: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    response = await client.get(f"/v2/images/{image_id}/tasks", headers=headers or {})
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


# -- what the stores and the broker hold ---------------------------------------------------


def staged_files(settings: Settings) -> list[Path]:
    datadir = settings.store_datadir(STAGING_STORE)
    return sorted(datadir.iterdir()) if datadir.exists() else []


def stored_files(settings: Settings) -> list[Path]:
    datadir = settings.store_datadir(settings.default_store)
    return sorted(datadir.iterdir()) if datadir.exists() else []


def sent_messages(settings: Settings) -> list[tuple[str, list[Any]]]:
    """(task name, args) of every message waiting in the filesystem broker's folder."""
    queue = settings.celery.broker_data_dir / "queue"
    found = []
    for path in sorted(queue.glob("*")) if queue.exists() else []:
        message = json.loads(path.read_bytes())
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        found.append((message["headers"]["task"], args))
    return found


def s3_section(endpoint: str, bucket: str, *, create_bucket: bool) -> dict[str, Any]:
    return {
        "s3_store_host": endpoint,
        "s3_store_access_key": "copy-access",
        "s3_store_secret_key": "copy-secret",
        "s3_store_bucket": bucket,
        "s3_store_create_bucket_on_put": create_bucket,
        "s3_store_bucket_url_format": "path",
    }


def app_routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, through included routers too."""
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        # FastAPI >= 0.16x wraps included routers; older versions list the routes directly.
        contexts = getattr(route, "effective_route_contexts", None)
        entries = list(contexts()) if contexts is not None else [route]
        for entry in entries:
            for method in getattr(entry, "methods", None) or ():
                found.add((method, entry.path))
    return found


# -- glance-direct imports through the worker's pipeline, in-process --------------------------


def qemu_img(*args: str) -> str:
    done = subprocess.run(["qemu-img", *args], capture_output=True, text=True, check=True)
    return done.stdout


@dataclass
class Imported:
    client: httpx.AsyncClient
    settings: Settings
    image_id: str
    image: dict[str, Any]
    task: dict[str, Any]


async def start_import(
    make_settings: Any,
    client_for: Any,
    data: bytes,
    *,
    headers: dict[str, str] = OWNER,
    disk_format: str = "raw",
    container_format: str = "bare",
    **overrides: Any,
) -> tuple[httpx.AsyncClient, Settings, str, str]:
    settings = make_settings(auth_strategy="trusted-proxy", **overrides)
    client: httpx.AsyncClient = await client_for(settings)
    image_id = await new_image(
        client, headers, disk_format=disk_format, container_format=container_format
    )
    staged = await client.put(
        f"/v2/images/{image_id}/stage", content=data, headers={**headers, **OCTET}
    )
    assert staged.status_code == 204, staged.text
    started = await client.post(
        f"/v2/images/{image_id}/import", json=GLANCE_DIRECT, headers=headers
    )
    assert started.status_code == 202, started.text
    [task] = await image_tasks(client, image_id, headers)
    return client, settings, image_id, task["id"]


async def run_import(
    make_settings: Any,
    client_for: Any,
    data: bytes,
    plugin_names: list[str],
    *,
    headers: dict[str, str] = OWNER,
    **options: Any,
) -> Imported:
    """Stage `data`, import it with the plugins, run the worker's pipeline to its end."""
    client, settings, image_id, task_id = await start_import(
        make_settings,
        client_for,
        data,
        headers=headers,
        image_import_opts={"image_import_plugins": plugin_names},
        **options,
    )
    context = WorkerRuntime.build(settings)
    try:
        await import_.run(context, task_id)
    finally:
        await context.aclose()
    image = (await client.get(f"/v2/images/{image_id}", headers=headers)).json()
    task = (await client.get(f"/v2/tasks/{task_id}", headers=ADMIN)).json()
    return Imported(client, settings, image_id, image, task)


def assert_active_with(imported: Imported, data: bytes) -> None:
    assert imported.image["status"] == "active", imported.task
    assert imported.image["size"] == len(data)
    assert imported.image["checksum"] == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert imported.image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert staged_files(imported.settings) == []


def assert_refused(imported: Imported, message: str) -> None:
    """Failed task with `message`, image queued again, nothing left in staging or the store."""
    assert imported.task["status"] == "failure"
    assert message in imported.task["message"], imported.task["message"]
    assert imported.image["status"] == "queued"
    assert staged_files(imported.settings) == []
    datadir = imported.settings.glance_store.filesystem_store_datadir
    stored = list(datadir.iterdir()) if datadir.exists() else []
    assert [path for path in stored if imported.image_id in path.name] == []
