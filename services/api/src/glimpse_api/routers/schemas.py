"""JSON schemas of the API's documents (GET only, no policy)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from glimpse_api.openapi.routes import operation
from glimpse_api.schemas.json_schemas import image_schema, images_schema
from glimpse_api.schemas.members import member_schema, members_schema
from glimpse_api.schemas.tasks import task_schema, tasks_schema

router = APIRouter(prefix="/v2/schemas")

# Each answer is a JSON schema (draft 4, as Glance's).
_SCHEMA = operation(ok=(200, {"type": "object"}))


@router.get("/image", **_SCHEMA)
async def get_image_schema() -> dict[str, Any]:
    return image_schema()


@router.get("/images", **_SCHEMA)
async def get_images_schema() -> dict[str, Any]:
    return images_schema()


@router.get("/member", **_SCHEMA)
async def get_member_schema() -> dict[str, Any]:
    return member_schema()


@router.get("/members", **_SCHEMA)
async def get_members_schema() -> dict[str, Any]:
    return members_schema()


@router.get("/task", **_SCHEMA)
async def get_task_schema() -> dict[str, Any]:
    return task_schema()


@router.get("/tasks", **_SCHEMA)
async def get_tasks_schema() -> dict[str, Any]:
    return tasks_schema()
