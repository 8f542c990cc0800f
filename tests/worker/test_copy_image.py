"""copy-image, store writes side by side, all_stores_must_succeed, and the stale import lock.

The worker's pipeline runs in-process (import_.run), against real file stores and moto's S3
server; the live worker process is in tests/compat/test_copy_image_live.py.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from factories import OCTET, s3_section
from glimpse.config import Settings
from glimpse.config.reserved import STAGING_STORE
from glimpse.db.engine import Database
from glimpse.db.tables import utcnow
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OTHER, OWNER, new_image
from store_servers import MotoServer
from support import free_port

FILE_STORES = ("a", "b", "c")


def copy_body(*stores: str, **options: Any) -> dict[str, Any]:
    return {"method": {"name": "copy-image"}, "stores": list(stores), **options}


def store_settings(
    make_settings: Any, tmp_path: Path, s3_stores: dict[str, dict[str, Any]] | None = None
) -> Settings:
    """Three file stores (a, the default, b and c) and the given s3 stores."""
    s3_stores = s3_stores or {}
    backends = [f"{name}:file" for name in FILE_STORES] + [f"{name}:s3" for name in s3_stores]
    stores = {name: {"filesystem_store_datadir": str(tmp_path / name)} for name in FILE_STORES}
    settings: Settings = make_settings(
        auth_strategy="trusted-proxy",
        enabled_backends=", ".join(backends),
        glance_store={"default_backend": "a"},
        stores={**stores, **s3_stores},
    )
    return settings


async def active_image(client: httpx.AsyncClient, data: bytes) -> dict[str, Any]:
    """An image of OWNER's with `data` uploaded to the default store (a)."""
    image_id = await new_image(client, OWNER, disk_format="raw", container_format="bare")
    response = await client.put(
        f"/v2/images/{image_id}/file", content=data, headers={**OWNER, **OCTET}
    )
    assert response.status_code == 204, response.text
    image: dict[str, Any] = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert image["status"] == "active"
    assert image["stores"] == "a"
    return image


async def image_tasks(client: httpx.AsyncClient, image_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v2/images/{image_id}/tasks", headers=ADMIN)
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def task_of(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = (await client.get(f"/v2/tasks/{task_id}", headers=ADMIN)).json()
    return task


async def run_task(settings: Settings, task_id: str) -> None:
    context = WorkerRuntime.build(settings)
    try:
        await import_.run(context, task_id)
    finally:
        await context.aclose()


async def start_copy(client: httpx.AsyncClient, image_id: str, body: dict[str, Any]) -> str:
    """POST the copy as an admin; returns the new task's id."""
    response = await client.post(f"/v2/images/{image_id}/import", json=body, headers=ADMIN)
    assert response.status_code == 202, response.text
    image = (await client.get(f"/v2/images/{image_id}", headers=ADMIN)).json()
    task_id: str = image["os_glance_import_task"]
    return task_id


async def show(client: httpx.AsyncClient, image_id: str) -> dict[str, Any]:
    image: dict[str, Any] = (await client.get(f"/v2/images/{image_id}", headers=ADMIN)).json()
    return image


def staged_files(settings: Settings) -> list[Path]:
    datadir = settings.store_datadir(STAGING_STORE)
    return sorted(datadir.iterdir()) if datadir.exists() else []


def bucket_keys(endpoint: str, bucket: str) -> list[str] | None:
    """The keys in a moto bucket; None if the bucket does not exist."""
    response = httpx.get(f"{endpoint}/{bucket}", timeout=30)
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return [part.split("</Key>")[0] for part in response.text.split("<Key>")[1:]]


def same_image_data(before: dict[str, Any], after: dict[str, Any]) -> None:
    for field in ("size", "checksum", "os_hash_algo", "os_hash_value", "virtual_size"):
        assert after[field] == before[field], field


async def test_copy_to_two_file_stores(make_settings: Any, client_for: Any, tmp_path: Path) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    data = os.urandom(3 * 1024 * 1024 + 17)
    before = await active_image(client, data)
    image_id = before["id"]

    task_id = await start_copy(client, image_id, copy_body("b", "c"))
    copying = await show(client, image_id)
    assert copying["status"] == "active"  # a copy never takes the image out of service
    assert copying["os_glance_importing_to_stores"] == "b,c"
    [task] = await image_tasks(client, image_id)
    assert task["id"] == task_id
    assert task["input"]["backend"] == ["b", "c"]

    await run_task(settings, task_id)

    after = await show(client, image_id)
    assert after["status"] == "active"
    assert after["stores"] == "a,b,c"
    same_image_data(before, after)
    assert after["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert "os_glance_import_task" not in after
    # As in Glance, the progress keys stay, empty: tempest waits for that.
    assert (after["os_glance_importing_to_stores"], after["os_glance_failed_import"]) == ("", "")
    for store in FILE_STORES:
        assert (tmp_path / store / image_id).read_bytes() == data
        download = await client.get(f"/v2/images/{image_id}/file?prefer={store}", headers=ADMIN)
        assert download.status_code == 200
        assert download.content == data
    done = await task_of(client, task_id)
    assert done["status"] == "success"
    assert done["result"]["image_id"] == image_id
    assert sorted(done["result"]["stores"]) == ["b", "c"]
    assert done["result"]["failed"] == []
    assert done["message"] == "Copied 3 MiB"  # what every target store received
    assert staged_files(settings) == []


async def test_copy_to_a_file_store_and_s3(
    make_settings: Any, client_for: Any, tmp_path: Path, moto_server: MotoServer
) -> None:
    bucket = f"copy-{uuid.uuid4().hex[:12]}"
    section = s3_section(moto_server.endpoint, bucket, create_bucket=True)
    settings = store_settings(make_settings, tmp_path, {"cold": section})
    client = await client_for(settings)
    data = os.urandom(2 * 1024 * 1024 + 5)
    before = await active_image(client, data)
    image_id = before["id"]

    task_id = await start_copy(client, image_id, copy_body("b", "cold"))
    await run_task(settings, task_id)

    after = await show(client, image_id)
    assert after["status"] == "active"
    assert sorted(after["stores"].split(",")) == ["a", "b", "cold"]
    same_image_data(before, after)
    assert bucket_keys(moto_server.endpoint, bucket) == [image_id]
    assert (tmp_path / "b" / image_id).read_bytes() == data
    # Take the image out of both file stores: what is left is read from S3.
    for store in ("a", "b"):
        deleted = await client.delete(f"/v2/stores/{store}/{image_id}", headers=ADMIN)
        assert deleted.status_code == 204, deleted.text
        assert not (tmp_path / store / image_id).exists()
    assert (await show(client, image_id))["stores"] == "cold"
    download = await client.get(f"/v2/images/{image_id}/file", headers=ADMIN)
    assert download.status_code == 200
    assert hashlib.sha512(download.content).hexdigest() == before["os_hash_value"]


async def test_copy_skips_or_refuses_stores_that_hold_the_image(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    image_id = (await active_image(client, b"held in a"))["id"]

    # Named explicitly: Glance refuses the request.
    named = await client.post(
        f"/v2/images/{image_id}/import", json=copy_body("a", "b"), headers=ADMIN
    )
    assert named.status_code == 400
    assert "already present at store 'a'" in named.json()["message"]
    assert await image_tasks(client, image_id) == []

    # all_stores: the stores holding it are dropped.
    body = {"method": {"name": "copy-image"}, "all_stores": True}
    task_id = await start_copy(client, image_id, body)
    [task] = await image_tasks(client, image_id)
    assert task["input"]["backend"] == ["b", "c"]
    assert task["input"]["import_req"]["stores"] == ["b", "c"]
    await run_task(settings, task_id)
    assert sorted((await show(client, image_id))["stores"].split(",")) == ["a", "b", "c"]

    # In every store already: accepted, and nothing to do (no task, no lock).
    again = await client.post(f"/v2/images/{image_id}/import", json=body, headers=ADMIN)
    assert again.status_code == 202
    assert len(await image_tasks(client, image_id)) == 1
    assert "os_glance_import_task" not in await show(client, image_id)


async def test_copy_is_for_admins_and_active_images(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    image_id = (await active_image(client, b"owned"))["id"]
    url = f"/v2/images/{image_id}/import"
    # The owner sees the image but may not copy it; another project does not see it.
    assert (await client.post(url, json=copy_body("b"), headers=OWNER)).status_code == 403
    assert (await client.post(url, json=copy_body("b"), headers=OTHER)).status_code == 404
    queued = await new_image(client, OWNER, disk_format="raw", container_format="bare")
    response = await client.post(f"/v2/images/{queued}/import", json=copy_body("b"), headers=ADMIN)
    assert response.status_code == 409
    assert (await show(client, queued))["status"] == "queued"
    for refused in (image_id, queued):
        assert await image_tasks(client, refused) == []
        assert "os_glance_import_task" not in await show(client, refused)
    assert not (tmp_path / "b").exists() or list((tmp_path / "b").iterdir()) == []


async def stage(client: httpx.AsyncClient, data: bytes) -> str:
    image_id = await new_image(client, OWNER, disk_format="raw", container_format="bare")
    response = await client.put(
        f"/v2/images/{image_id}/stage", content=data, headers={**OWNER, **OCTET}
    )
    assert response.status_code == 204, response.text
    return image_id


@pytest.mark.parametrize("method", ["copy-image", "glance-direct"])
@pytest.mark.parametrize("must_succeed", [True, False])
async def test_one_store_failing(
    make_settings: Any,
    client_for: Any,
    tmp_path: Path,
    *,  # pytest passes everything by keyword
    moto_server: MotoServer,
    method: str,
    must_succeed: bool,
) -> None:
    bucket = f"missing-{uuid.uuid4().hex[:12]}"
    # The bucket does not exist and the store may not create it: every write there fails.
    section = s3_section(moto_server.endpoint, bucket, create_bucket=False)
    settings = store_settings(make_settings, tmp_path, {"broken": section})
    client = await client_for(settings)
    data = os.urandom(1024 * 1024 + 9)
    body = {
        "method": {"name": method},
        "stores": ["b", "broken"],
        "all_stores_must_succeed": must_succeed,
    }
    if method == "copy-image":
        image_id = (await active_image(client, data))["id"]
        task_id = await start_copy(client, image_id, body)
    else:
        image_id = await stage(client, data)
        response = await client.post(f"/v2/images/{image_id}/import", json=body, headers=OWNER)
        assert response.status_code == 202, response.text
        [task] = await image_tasks(client, image_id)
        task_id = task["id"]

    await run_task(settings, task_id)

    image = await show(client, image_id)
    task = await task_of(client, task_id)
    assert image["os_glance_failed_import"] == "broken"
    assert "os_glance_import_task" not in image
    assert image["os_glance_importing_to_stores"] == ""
    assert bucket_keys(moto_server.endpoint, bucket) is None
    in_b = tmp_path / "b" / image_id
    if must_succeed:
        # Any failure fails the import, and what it wrote in b is gone again.
        assert task["status"] == "failure"
        assert "broken" in task["message"]
        assert not in_b.exists()
        if method == "copy-image":
            assert image["status"] == "active"
            assert image["stores"] == "a"
            assert (tmp_path / "a" / image_id).read_bytes() == data
        else:
            assert image["status"] == "queued"
            assert image["size"] is None
            assert "stores" not in image
    else:
        assert task["status"] == "success"
        assert task["result"]["failed"] == ["broken"]
        assert image["status"] == "active"
        assert in_b.read_bytes() == data
        expected = ["a", "b"] if method == "copy-image" else ["b"]
        assert sorted(image["stores"].split(",")) == expected
        assert image["os_hash_value"] == hashlib.sha512(data).hexdigest()
    assert staged_files(settings) == []


async def test_copy_failing_in_every_store(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    # An endpoint nothing listens on.
    section = s3_section(f"http://127.0.0.1:{free_port()}", "nowhere", create_bucket=True)
    settings = store_settings(make_settings, tmp_path, {"offline": section})
    client = await client_for(settings)
    before = await active_image(client, b"stays where it is")
    image_id = before["id"]
    body = copy_body("offline", all_stores_must_succeed=False)
    task_id = await start_copy(client, image_id, body)

    await run_task(settings, task_id)

    task = await task_of(client, task_id)
    assert task["status"] == "failure"
    assert "every store" in task["message"]
    after = await show(client, image_id)
    assert after["status"] == "active"
    assert after["stores"] == "a"
    assert after["os_glance_failed_import"] == "offline"
    assert "os_glance_import_task" not in after
    same_image_data(before, after)
    # A later copy to that store starts afresh: it is no longer listed as failed.
    await start_copy(client, image_id, body)
    assert (await show(client, image_id))["os_glance_failed_import"] == ""


async def age_task(
    database: Database,
    task_id: str,
    *,
    status: str,
    minutes_ago: int,
    lease_minutes: int | None,
    resent: bool = False,
) -> None:
    """Make the task `minutes_ago` old; `resent`: the scrubber re-sent it just now."""
    now = utcnow()
    lease = None if lease_minutes is None else now + timedelta(minutes=lease_minutes)
    created = now - timedelta(minutes=minutes_ago)
    async with database.write() as session:
        await session.execute(
            sa.text(
                "UPDATE tasks SET status = :status, created_at = :created, updated_at = :updated,"
                " lease_until = :lease WHERE id = :id"
            ),
            {
                "status": status,
                "created": created,
                "updated": now if resent else created,
                "lease": lease,
                "id": task_id,
            },
        )


@pytest.mark.parametrize(
    ("status", "minutes_ago", "lease_minutes", "stale"),
    [
        ("pending", 0, None, False),
        ("pending", 90, None, False),  # a pending task gets twice the 60 minutes
        ("pending", 121, None, True),
        # Re-sent by the scrubber a moment ago, yet no worker ever took it: stale all the same.
        ("pending-resent", 121, None, True),
        ("processing", 30, 5, False),
        ("processing", 61, -50, True),  # its worker died: no update, lease run out
        ("processing", 120, 5, False),  # its worker still renews the lease
        ("gone", 0, None, True),  # the task row is no more (expired)
    ],
)
async def test_import_lock_taken_over_only_when_stale(
    make_settings: Any,
    client_for: Any,
    tmp_path: Path,
    *,  # pytest passes everything by keyword
    database: Database,
    status: str,
    minutes_ago: int,
    lease_minutes: int | None,
    stale: bool,
) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    data = b"locked" * 1000
    image_id = (await active_image(client, data))["id"]
    # An earlier copy whose message was lost, or whose worker is still busy, or died.
    old_id = await start_copy(client, image_id, copy_body("b"))
    if status == "gone":
        async with database.write() as session:
            await session.execute(sa.text("DELETE FROM tasks WHERE id = :id"), {"id": old_id})
    else:
        await age_task(
            database,
            old_id,
            status=status.removesuffix("-resent"),
            minutes_ago=minutes_ago,
            lease_minutes=lease_minutes,
            resent=status.endswith("-resent"),
        )

    url = f"/v2/images/{image_id}/import"
    response = await client.post(url, json=copy_body("b", "c"), headers=ADMIN)

    image = await show(client, image_id)
    if not stale:
        assert response.status_code == 409
        assert image["os_glance_import_task"] == old_id
        assert image["os_glance_importing_to_stores"] == "b"
        assert [task["id"] for task in await image_tasks(client, image_id)] == [old_id]
        return
    assert response.status_code == 202, response.text
    new_id = image["os_glance_import_task"]
    assert new_id != old_id
    assert image["os_glance_importing_to_stores"] == "b,c"
    if status != "gone":
        old = await task_of(client, old_id)
        assert old["status"] == "failure"
        assert old["message"] == "Expired lock preempted"
    await run_task(settings, new_id)
    # The old task's message, delivered late, changes nothing.
    await run_task(settings, old_id)
    after = await show(client, image_id)
    assert after["status"] == "active"
    assert sorted(after["stores"].split(",")) == ["a", "b", "c"]
    assert "os_glance_import_task" not in after
    assert (await task_of(client, new_id))["status"] == "success"
    for store in ("b", "c"):
        assert (tmp_path / store / image_id).read_bytes() == data


async def test_copy_reads_past_a_corrupt_location(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    data = os.urandom(2 * 1024 * 1024 + 3)
    image_id = (await active_image(client, data))["id"]
    await run_task(settings, await start_copy(client, image_id, copy_body("b")))
    # Same size, other bytes: only the hash tells.
    (tmp_path / "a" / image_id).write_bytes(bytes(len(data)))

    await run_task(settings, await start_copy(client, image_id, copy_body("c")))

    assert (tmp_path / "c" / image_id).read_bytes() == data
    # The corrupt location's data went to the store first: refused at its end, nothing of
    # that attempt is left beside the good copy.
    assert [p.name for p in (tmp_path / "c").iterdir()] == [image_id]
    assert sorted((await show(client, image_id))["stores"].split(",")) == ["a", "b", "c"]


async def test_copy_fails_when_no_location_is_intact(
    make_settings: Any, client_for: Any, tmp_path: Path
) -> None:
    settings = store_settings(make_settings, tmp_path)
    client = await client_for(settings)
    data = b"original" * 10000
    before = await active_image(client, data)
    image_id = before["id"]
    (tmp_path / "a" / image_id).write_bytes(b"tampered" * 10000)
    task_id = await start_copy(client, image_id, copy_body("b"))

    await run_task(settings, task_id)

    task = await task_of(client, task_id)
    assert task["status"] == "failure"
    assert "could not be read from any store" in task["message"]
    after = await show(client, image_id)
    assert after["status"] == "active"
    assert after["stores"] == "a"
    assert "os_glance_import_task" not in after
    same_image_data(before, after)
    assert not (tmp_path / "b" / image_id).exists()
    assert staged_files(settings) == []
