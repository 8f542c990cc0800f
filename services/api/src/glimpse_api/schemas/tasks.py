"""Glance's wire representation of tasks and their JSON schemas."""

from __future__ import annotations

from typing import Any

from glimpse.db.tables import Task
from glimpse.domain.redaction import redact_data, redact_text
from glimpse.domain.tasks import TaskStatus
from glimpse.services.glance_download import METADATA_BEFORE, USER_TOKEN
from glimpse_api.schemas.images import format_time

_UUID_PATTERN = (
    "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"
)

# What a list shows of each task (Glance leaves input, result and message to GET /tasks/{id}).
_STUB = ("id", "type", "status", "owner", "expires_at", "created_at", "updated_at", "self")
# Input the worker needs and Glance's tasks do not hold: never shown.
_INTERNAL_INPUT = frozenset({"user_roles", USER_TOKEN, METADATA_BEFORE})


def _shown_input(task_input: dict[str, object]) -> dict[str, object]:
    """The task's input as Glance shows it: its own keys, URLs without credentials."""
    return redact_data({k: v for k, v in task_input.items() if k not in _INTERNAL_INPUT})


def task_view(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "type": task.type,
        "status": task.status,
        "owner": task.owner,
        "input": _shown_input(task.input),
        "result": redact_data(task.result),
        "message": redact_text(task.message),
        "image_id": task.image_id,
        "request_id": task.request_id,
        "user_id": task.user_id,
        "expires_at": format_time(task.expires_at),
        "created_at": format_time(task.created_at),
        "updated_at": format_time(task.updated_at or task.created_at),
        "self": f"/v2/tasks/{task.id}",
        "schema": "/v2/schemas/task",
    }


def tasks_view(tasks: list[Task], next_query: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "tasks": [
            {key: value for key, value in task_view(t).items() if key in _STUB}
            | {"schema": "/v2/schemas/task"}
            for t in tasks
        ],
        "first": "/v2/tasks",
        "schema": "/v2/schemas/tasks",
    }
    if next_query is not None:
        body["next"] = f"/v2/tasks?{next_query}"
    return body


def image_tasks_view(tasks: list[Task]) -> dict[str, Any]:
    return {"tasks": [task_view(t) for t in tasks]}


def _properties() -> dict[str, Any]:
    text = {"type": "string"}
    return {
        "id": {"description": "An identifier for the task", "pattern": _UUID_PATTERN, **text},
        "type": {
            "description": "The type of task represented by this content",
            "enum": ["import", "api_image_import", "location_import"],
            **text,
        },
        "status": {
            "description": "The current status of this task",
            "enum": [str(s) for s in TaskStatus],
            **text,
        },
        "input": {"description": "The parameters required by task", "type": ["null", "object"]},
        "result": {"description": "The result of current task", "type": ["null", "object"]},
        "owner": {"description": "An identifier for the owner of this task", **text},
        "message": {"description": "Human-readable informative message", **text},
        "image_id": {"description": "Image associated with the task", **text},
        "request_id": {"description": "Request ID that started the task", **text},
        "user_id": {"description": "User associated with the task", **text},
        "expires_at": {"description": "When the task expires", "type": ["null", "string"]},
        "created_at": {"description": "When the task was created", **text},
        "updated_at": {"description": "When the task was last changed", **text},
        "self": {"readOnly": True, **text},
        "schema": {"readOnly": True, **text},
    }


def task_schema() -> dict[str, Any]:
    return {"name": "task", "properties": _properties()}


def tasks_schema() -> dict[str, Any]:
    stub = {key: value for key, value in _properties().items() if key in (*_STUB, "schema")}
    return {
        "name": "tasks",
        "properties": {
            "tasks": {"type": "array", "items": {"name": "task", "properties": stub}},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
