"""The Tasks API read side, the worker's claim and lease, and requeueing lost messages."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from factories import GLANCE_DIRECT, image_tasks, sent_messages, staged_image
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Task, utcnow
from glimpse.jobs import names
from glimpse_scrubber.jobs import ScrubberRuntime, requeue_pending
from glimpse_worker.pipelines import import_
from glimpse_worker.runtime import WorkerRuntime
from personas import ADMIN, OTHER, OWNER, proxy_client


async def add_task(database: Database, **fields: Any) -> str:
    task_id = str(uuid.uuid4())
    values = {"type": "api_image_import", "status": "pending", "owner": "owner", **fields}
    async with database.write() as session:
        await TaskRepository(session).add(Task(id=task_id, **values))
    return task_id


async def test_list_filters_sorts_and_pages(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    client = await proxy_client(make_settings, client_for)
    now = utcnow()
    ids = [
        await add_task(database, status=status, created_at=now - timedelta(minutes=n + 1))
        for n, status in enumerate(["pending", "success", "failure", "success"])
    ]
    await add_task(database, owner="elsewhere")
    await add_task(database, expires_at=now - timedelta(hours=1))  # expired: gone
    listed = (await client.get("/v2/tasks", headers=ADMIN)).json()
    assert listed["schema"] == "/v2/schemas/tasks"
    assert listed["first"] == "/v2/tasks"
    assert [t["id"] for t in listed["tasks"]][1:] == ids  # newest first; `elsewhere` is newest
    assert "input" not in listed["tasks"][0]
    success = (await client.get("/v2/tasks?status=success", headers=ADMIN)).json()["tasks"]
    assert [t["id"] for t in success] == [ids[1], ids[3]]
    oldest_first = await client.get(
        "/v2/tasks?type=api_image_import&sort_key=created_at&sort_dir=asc&limit=2", headers=ADMIN
    )
    body = oldest_first.json()
    assert [t["id"] for t in body["tasks"]] == [ids[3], ids[2]]
    assert f"marker={ids[2]}" in body["next"]
    rest = (await client.get(body["next"], headers=ADMIN)).json()
    assert [t["id"] for t in rest["tasks"]][:2] == [ids[1], ids[0]]
    for query in ("sort_key=message", "sort_dir=up", "status=done", "marker=nope", "limit=-1"):
        assert (await client.get(f"/v2/tasks?{query}", headers=ADMIN)).status_code == 400, query


async def test_tasks_api_access_opened_by_policy(
    make_settings: Any, client_for: Any, database: Database, tmp_path: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text('"tasks_api_access": "role:member"\n')
    client = await proxy_client(make_settings, client_for, oslo_policy={"policy_file": str(policy)})
    mine = await add_task(database, owner="owner")
    theirs = await add_task(database, owner="other")
    listed = (await client.get("/v2/tasks", headers=OWNER)).json()["tasks"]
    assert [t["id"] for t in listed] == [mine]
    assert (await client.get(f"/v2/tasks/{mine}", headers=OWNER)).json()["id"] == mine
    assert (await client.get(f"/v2/tasks/{theirs}", headers=OWNER)).status_code == 404
    assert (await client.get(f"/v2/tasks/{theirs}", headers=OTHER)).status_code == 200


async def test_deleting_a_task_is_refused_and_the_task_stays(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    client = await proxy_client(make_settings, client_for)
    task_id = await add_task(database)
    refused = await client.delete(f"/v2/tasks/{task_id}", headers=ADMIN)
    assert refused.status_code == 405
    assert refused.headers["Allow"] == "GET"
    assert "expire" in refused.json()["message"]
    forbidden = await client.delete(f"/v2/tasks/{task_id}", headers=OWNER)
    assert forbidden.status_code == 403  # tasks_api_access, before anything about the task
    assert (await client.get(f"/v2/tasks/{task_id}", headers=ADMIN)).json()["status"] == "pending"


async def test_task_schemas(client: httpx.AsyncClient) -> None:
    task = (await client.get("/v2/schemas/task")).json()
    assert task["name"] == "task"
    assert task["properties"]["status"]["enum"] == ["pending", "processing", "success", "failure"]
    tasks = (await client.get("/v2/schemas/tasks")).json()
    assert tasks["name"] == "tasks"
    assert "input" not in tasks["properties"]["tasks"]["items"]["properties"]


async def test_a_live_lease_keeps_other_workers_out_and_a_dead_one_is_taken_over(
    client: httpx.AsyncClient, settings: Settings, database: Database
) -> None:
    image_id = await staged_image(client, b"leased data")
    assert (
        await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    ).status_code == 202
    [task] = await image_tasks(client, image_id)
    lease = sa.text("UPDATE tasks SET status = 'processing', lease_until = :until WHERE id = :id")
    async with database.write() as session:
        await session.execute(lease, {"until": utcnow() + timedelta(hours=1), "id": task["id"]})
    worker = WorkerRuntime.build(settings)
    try:
        # Another worker holds it: nothing happens; look again when its lease ends.
        recheck = await import_.run(worker, task["id"])
        assert recheck is not None
        assert 3500 < recheck <= 3601
        assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "importing"
        async with database.write() as session:
            await session.execute(lease, {"until": utcnow() - timedelta(hours=1), "id": task["id"]})
        await import_.run(worker, task["id"])  # its worker is presumed dead: taken over
    finally:
        await worker.aclose()
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "active"
    assert (await client.get(f"/v2/images/{image_id}/file")).content == b"leased data"
    [done] = await image_tasks(client, image_id)
    assert done["status"] == "success"


@pytest.mark.usefixtures("database")
async def test_a_lost_message_is_sent_again_by_the_scrubber(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    # Nothing listens on port 9: the API's send fails and the task stays pending.
    down = make_settings(celery={"broker_url": "redis://127.0.0.1:9/0"})
    client = await client_for(down)
    image_id = await staged_image(client, b"lost message")
    response = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT)
    assert response.status_code == 202
    [task] = await image_tasks(client, image_id)
    assert task["status"] == "pending"

    settings = make_settings(task={"requeue_pending_after": 60})
    runtime = ScrubberRuntime.build(settings)
    try:
        await requeue_pending(runtime)
        assert sent_messages(settings) == []  # not pending for long enough yet
        async with database.write() as session:
            await session.execute(
                sa.text("UPDATE tasks SET created_at = :t WHERE id = :id"),
                {"t": utcnow() - timedelta(minutes=5), "id": task["id"]},
            )
        await requeue_pending(runtime)
        assert sent_messages(settings) == [(names.IMPORT, [task["id"]])]
        await requeue_pending(runtime)  # just sent: not again until another period passed
        assert len(sent_messages(settings)) == 1
    finally:
        await runtime.aclose()
    worker = WorkerRuntime.build(settings)
    try:
        await import_.run(worker, task["id"])
    finally:
        await worker.aclose()
    assert (await client.get(f"/v2/images/{image_id}")).json()["status"] == "active"


async def test_a_processing_task_whose_lease_ran_out_is_sent_again(
    settings: Settings, database: Database
) -> None:
    now = utcnow()
    dead = await add_task(database, status="processing", lease_until=now - timedelta(minutes=1))
    await add_task(database, status="processing", lease_until=now + timedelta(minutes=10))
    await add_task(database, status="success")
    runtime = ScrubberRuntime.build(settings)
    try:
        await requeue_pending(runtime)
    finally:
        await runtime.aclose()
    assert sent_messages(settings) == [(names.IMPORT, [dead])]


async def test_a_member_imports_and_follows_it_without_the_tasks_api(
    make_settings: Any, client_for: Any, database: Database
) -> None:
    """Default policy (`tasks_api_access: role:admin`): the Tasks API is closed to a project
    member, yet the member's import is accepted, runs and is visible through the image."""
    del database  # requested for its migrated, empty schema
    settings = make_settings(auth_strategy="trusted-proxy")
    client = await client_for(settings)
    data = b"member data " * 100_000
    image_id = await staged_image(client, data, OWNER)
    started = await client.post(f"/v2/images/{image_id}/import", json=GLANCE_DIRECT, headers=OWNER)
    assert started.status_code == 202, started.text
    [pending] = await image_tasks(client, image_id, OWNER)
    assert pending["status"] == "pending"
    for path in ("/v2/tasks", f"/v2/tasks/{pending['id']}"):
        denied = await client.get(path, headers=OWNER)
        assert denied.status_code == 403, path
        assert denied.json()["code"] == "403 Forbidden"

    context = WorkerRuntime.build(settings)
    try:
        await import_.run(context, pending["id"])
    finally:
        await context.aclose()

    image = (await client.get(f"/v2/images/{image_id}", headers=OWNER)).json()
    assert image["status"] == "active"
    assert image["size"] == len(data)
    assert (await client.get(f"/v2/images/{image_id}/file", headers=OWNER)).content == data
    [done] = await image_tasks(client, image_id, OWNER)
    assert done["id"] == pending["id"]
    assert done["status"] == "success"
    assert done["result"] == {"image_id": image_id, "stores": ["file"], "failed": []}
    assert (await client.get(f"/v2/tasks/{done['id']}", headers=OWNER)).status_code == 403
    # Another project's member cannot see the private image, nor so its tasks.
    assert (await client.get(f"/v2/images/{image_id}/tasks", headers=OTHER)).status_code == 404
    assert (await client.get(f"/v2/tasks/{done['id']}", headers=ADMIN)).json()["owner"] == "owner"
