"""Task vocabulary (Glance's tasks: one row per import) and the import methods."""

from __future__ import annotations

import enum
from datetime import datetime, timedelta
from typing import Any, Final


class TaskStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    SUCCESS = "success"
    FAILURE = "failure"


FINISHED: Final = frozenset({TaskStatus.SUCCESS, TaskStatus.FAILURE})

TASK_TYPE_IMPORT: Final = "api_image_import"
# The Tasks API's own import (POST /v2/tasks): a new image filled from a URL.
TASK_TYPE_LEGACY_IMPORT: Final = "import"
# POST /v2/images/{id}/locations (2.17): a location recorded, and its data hashed, on a worker.
TASK_TYPE_LOCATION_IMPORT: Final = "location_import"

GLANCE_DIRECT: Final = "glance-direct"
WEB_DOWNLOAD: Final = "web-download"
COPY_IMAGE: Final = "copy-image"
GLANCE_DOWNLOAD: Final = "glance-download"
KNOWN_METHODS: Final = (GLANCE_DIRECT, WEB_DOWNLOAD, COPY_IMAGE, GLANCE_DOWNLOAD)
# What this release can run; the others are listed when configured but refused at import.
IMPLEMENTED_METHODS: Final = frozenset(KNOWN_METHODS)

# Reserved image properties that track an import (users can never write os_glance_*).
IMPORT_LOCK: Final = "os_glance_import_task"
IMPORTING_TO_STORES: Final = "os_glance_importing_to_stores"
FAILED_IMPORT: Final = "os_glance_failed_import"

# How long an import lock outlives its task's last update before another import may take it
# (Glance's rule; a pending task gets twice as long: it may be queued behind others).
IMPORT_LOCK_EXPIRY: Final = timedelta(minutes=60)

TASK_SORT_KEYS: Final = ("created_at", "updated_at", "id", "type", "status")


def store_list(value: str | None) -> list[str]:
    """A comma-separated store list as kept in the tracking properties."""
    return [item for item in (value or "").split(",") if item]


def import_request(task_type: str, task_input: dict[str, Any]) -> dict[str, Any]:
    """What the worker runs for a task: its `import_req`, or for a Tasks API import the
    web-download that stands for it (its input stays as the caller wrote it)."""
    if task_type == TASK_TYPE_LEGACY_IMPORT:
        return {"method": {"name": WEB_DOWNLOAD, "uri": task_input.get("import_from")}}
    request = task_input.get("import_req")
    return request if isinstance(request, dict) else {}


def lock_is_stale(
    status: str | None,
    last_update: datetime | None,
    lease_until: datetime | None,
    now: datetime,
) -> bool:
    """Whether an import lock held by a task (None values: the task is gone) may be taken
    over: its task no longer exists, or has not been updated for IMPORT_LOCK_EXPIRY (twice
    that while pending). A processing task whose worker still renews its lease is never
    stale, however long a step takes without reporting progress."""
    if status is None:
        return True
    if status == TaskStatus.PROCESSING and lease_until is not None and lease_until > now:
        return False
    expiry = IMPORT_LOCK_EXPIRY * 2 if status == TaskStatus.PENDING else IMPORT_LOCK_EXPIRY
    return last_update is None or now - last_update >= expiry
