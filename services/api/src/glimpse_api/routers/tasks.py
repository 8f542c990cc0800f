"""Tasks: the legacy Tasks API (list, show, create an `import`; delete is refused) and an
image's tasks (2.12)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response

from glimpse_api.deps import ContextDep, LegacyTaskServiceDep, TaskServiceDep
from glimpse_api.schemas.body import MalformedJSON, read_json
from glimpse_api.schemas.tasks import image_tasks_view, task_view, tasks_view

router = APIRouter()


@router.get("/v2/tasks")
async def list_tasks(request: Request, ctx: ContextDep, tasks: TaskServiceDep) -> dict[str, Any]:
    params = dict(request.query_params)
    page = await tasks.list_tasks(ctx, params)
    next_query = None
    if page.next_marker is not None:
        next_query = urlencode({**params, "marker": page.next_marker})
    return tasks_view(page.tasks, next_query)


@router.post("/v2/tasks", status_code=201)
async def create_task(
    request: Request, response: Response, ctx: ContextDep, tasks: LegacyTaskServiceDep
) -> dict[str, Any]:
    try:
        body = await read_json(request)
    except MalformedJSON:
        body = None  # refused by the service, as a missing body
    task = await tasks.create(ctx, body)
    response.headers["Location"] = f"/v2/tasks/{task.id}"
    return task_view(task)


@router.get("/v2/tasks/{task_id}")
async def get_task(task_id: str, ctx: ContextDep, tasks: TaskServiceDep) -> dict[str, Any]:
    return task_view(await tasks.get(ctx, task_id))


@router.delete("/v2/tasks/{task_id}", status_code=204)
async def delete_task(task_id: str, ctx: ContextDep, tasks: TaskServiceDep) -> None:
    await tasks.delete(ctx, task_id)  # always refused; see TaskService.delete


@router.get("/v2/images/{image_id}/tasks")
async def image_tasks(image_id: str, ctx: ContextDep, tasks: TaskServiceDep) -> dict[str, Any]:
    return image_tasks_view(await tasks.for_image(ctx, image_id))
