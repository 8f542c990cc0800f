"""POST /v2/tasks: the Tasks API's `import` task (deprecated in Glance, still accepted).

`{"type": "import", "input": {"import_from": url, "import_from_format": ...,
"image_properties": {...}}}` makes a new image from `image_properties` and fills it from the
URL. Here that is a web-download into the default store: the image (queued -> importing), its
import lock and the task row are written in one transaction, the job message follows the
commit, and the worker runs the same import pipeline (glimpse.domain.imports.ImportTaskInput).
If the import fails the worker deletes the image, as Glance's task does.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, Final

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Task
from glimpse.domain import policy
from glimpse.domain.errors import InvalidInput
from glimpse.domain.images import ImageStatus
from glimpse.domain.redaction import redact_data, redact_text, redact_url
from glimpse.domain.tasks import (
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    TASK_TYPE_LEGACY_IMPORT,
    TaskStatus,
)
from glimpse.net.urlfilter import URLFilter, URLRefused
from glimpse.services.images import add_new_image, plan_new_image
from glimpse.services.imports import Publisher
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)

# The task schema's fields (Glance's /v2/schemas/task), which a create body may carry.
TASK_FIELDS: Final = frozenset(
    {
        "id", "type", "status", "input", "result", "owner", "message", "image_id",
        "request_id", "user_id", "expires_at", "created_at", "updated_at", "self", "schema",
    }
)  # fmt: skip
TASK_TYPES: Final = ("import", "api_image_import", "location_import")
LEGACY_INPUTS: Final = ("import_from", "import_from_format", "image_properties")


class LegacyTaskService:
    def __init__(
        self, settings: Settings, database: Database, stores: StoreRegistry, publisher: Publisher
    ) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self.publisher = publisher

    async def create(self, ctx: RequestContext, body: object) -> Task:
        """Create an `import` task and its image; returns the task as stored."""
        policy.enforce(ctx, "tasks_api_access")
        task_input = _validated_body(body)
        uri = await self._import_from(task_input.get("import_from"))
        policy.enforce(ctx, "add_task")
        for key in LEGACY_INPUTS:
            if key not in task_input:
                raise InvalidInput(f"Input does not contain '{key}' field")
        properties = task_input["image_properties"]
        if not isinstance(properties, dict):
            raise InvalidInput("Input field 'image_properties' must be an object")
        new = plan_new_image(self.settings, ctx, properties)
        if new.image.disk_format is None or new.image.container_format is None:
            raise InvalidInput("image_properties must set disk_format and container_format")
        log.debug("Tasks API import of %s into image %s", redact_url(uri), new.image.id)
        task_id = str(uuid.uuid4())
        store = self.stores.default_id
        async with self.db.write() as session:
            repo = ImageRepository(session)
            await add_new_image(repo, new)
            await repo.claim_status(new.image.id, ImageStatus.QUEUED, ImageStatus.IMPORTING)
            await repo.set_properties(
                new.image.id, {IMPORT_LOCK: task_id, IMPORTING_TO_STORES: store}
            )
            await TaskRepository(session).add(
                Task(
                    id=task_id,
                    type=TASK_TYPE_LEGACY_IMPORT,
                    status=TaskStatus.PENDING,
                    input=task_input,  # shown back as the caller wrote it, URLs redacted
                    owner=ctx.project_id,
                    image_id=new.image.id,
                    user_id=ctx.user_id,
                    request_id=ctx.request_id,
                )
            )
        # After commit only: a message must never name a task that was rolled back.
        await self.publisher.publish_import(task_id)
        async with self.db.read() as session:
            task = await TaskRepository(session).get(task_id)
        assert task is not None  # noqa: S101 -- written above; tasks expire only once finished
        return task

    async def _import_from(self, uri: object) -> str:
        """Glance's checks of `import_from`: http(s) only, then [import_filtering_opts]."""
        if not isinstance(uri, str) or not uri:
            raise InvalidInput(f"Invalid location: {redact_data(uri)}")
        if uri.startswith(("file:///", "filesystem:///")):
            raise InvalidInput(
                "File based imports are not allowed. Please use a non-local source of image data."
            )
        if not uri.startswith(("http://", "https://")):
            raise InvalidInput(
                "The given uri is not valid. Please specify a valid uri from the following "
                "list of supported uri ['http']"
            )
        try:
            await URLFilter(self.settings.import_filtering_opts).check(uri)
        except URLRefused as exc:
            log.debug("refused to fetch %s: %s", redact_url(uri), redact_text(str(exc)))
            raise InvalidInput(
                f"URI for legacy import task does not pass filtering: {redact_url(uri)}"
            ) from None
        return uri


def _validated_body(body: object) -> dict[str, Any]:
    """The task's input, once the body passes Glance's checks (required fields, schema)."""
    if not isinstance(body, dict):
        raise InvalidInput("Body expected in request.")
    for required in ("type", "input"):
        if required not in body:
            raise InvalidInput(f"Task '{required}' is required")
    unknown = sorted(set(body) - TASK_FIELDS)
    if unknown:
        raise InvalidInput(
            f"Provided object does not match schema 'task': Additional properties are not "
            f"allowed ({', '.join(repr(k) for k in unknown)} unexpected)"
        )
    task_type, task_input = body["type"], body["input"]
    if task_type not in TASK_TYPES:
        raise InvalidInput(
            f"Provided object does not match schema 'task': {task_type!r} is not one of "
            f"{list(TASK_TYPES)}"
        )
    if task_type != TASK_TYPE_LEGACY_IMPORT:
        # Those types are made by image import (and locations), never through this API.
        raise InvalidInput(f"Task type {task_type} cannot be created through the Tasks API")
    if not isinstance(task_input, dict):
        raise InvalidInput(
            "Provided object does not match schema 'task': 'input' must be an object"
        )
    return task_input
