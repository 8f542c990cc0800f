"""Adding a location to a queued image (2.17 POST /v2/images/{id}/locations), API side.

As in Glance, the request is checked at once (the body, the image's status, who may point
where, the URL filter) and answered 202; a `location_import` task then does the work on a
worker (glimpse_worker.pipelines.location_import): it finds the store serving the URL, records
the location, and reads the data to hash it and to check `validation_data`. The task holds the
image's `os_glance_import_task` lock, taken in the same transaction as its row is written; the
job message follows the commit.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any, Final

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Task
from glimpse.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from glimpse.domain.images import ImageStatus
from glimpse.domain.tasks import IMPORT_LOCK, TASK_TYPE_LOCATION_IMPORT, TaskStatus
from glimpse.net.urlfilter import URLFilter
from glimpse.services.access import authorized_image
from glimpse.services.imports import Publisher, take_stale_lock
from glimpse.services.locations import check_fetchable, http_store_ids, is_trusted, is_web
from glimpse.stores.registry import StoreRegistry

# What Glance's add-location schema accepts in validation_data: both members or neither.
HASH_ALGORITHMS: Final = ("sha1", "sha256", "sha512", "md5")
_MAX_ALGO: Final = 64
_MAX_VALUE: Final = 128


def add_location_request(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The URL and validation_data of an add-location body, or 400. Members other than these
    two are ignored, as Glance's schema does."""
    url = body.get("url")
    if not isinstance(url, str) or not url:
        raise InvalidInput("Provided object does not match schema 'location': url is required.")
    if "validation_data" not in body:
        return url, {}
    return url, _validation(body["validation_data"])


def _validation(data: object) -> dict[str, str]:
    if not isinstance(data, dict):
        raise InvalidInput("validation_data must be an object.")
    unknown = sorted(set(data) - {"os_hash_algo", "os_hash_value"})
    if unknown:
        raise InvalidInput(f"validation_data may not hold {', '.join(unknown)}.")
    if not all(isinstance(value, str) for value in data.values()):
        raise InvalidInput("validation_data values must be strings.")
    if not data:
        return {}
    if set(data) != {"os_hash_algo", "os_hash_value"}:
        raise InvalidInput("validation_data needs both os_hash_algo and os_hash_value.")
    algo, value = data["os_hash_algo"], data["os_hash_value"]
    if len(algo) > _MAX_ALGO or algo not in HASH_ALGORITHMS:
        raise InvalidInput(
            f"os_hash_algo {algo[:_MAX_ALGO]} is not one of {', '.join(HASH_ALGORITHMS)}."
        )
    if len(value) > _MAX_VALUE:
        raise InvalidInput(f"os_hash_value is longer than {_MAX_VALUE} characters.")
    try:
        digest = bytes.fromhex(value)
    except ValueError:
        raise InvalidInput(f"os_hash_value ({value}) is not a valid hexadecimal value") from None
    size = hashlib.new(algo).digest_size
    if len(digest) != size:
        raise InvalidInput(
            f"os_hash_value: ({value}) is not the correct size for ({algo}) "
            f"(should be ({size}) bytes)"
        )
    return {"os_hash_algo": algo, "os_hash_value": value.lower()}


class LocationImportService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: StoreRegistry,
        publisher: Publisher,
    ) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self.publisher = publisher
        self.url_filter = URLFilter(settings.import_filtering_opts)

    async def add_location(self, ctx: RequestContext, image_id: str, body: dict[str, Any]) -> str:
        """Start adding the location `body` describes to queued image `image_id`; returns
        the id of the `location_import` task doing it."""
        url, validation = add_location_request(body)
        async with self.db.read() as session:
            image = await authorized_image(
                ImageRepository(session), ctx, image_id, "add_image_location"
            )
        _require_queued(image.status)
        if not is_trusted(ctx) and (not is_web(url) or not http_store_ids(self.stores)):
            raise Forbidden("http store must be enabled to use location API by normal user.")
        if is_web(url):
            await check_fetchable(self.url_filter, url)  # the worker checks it again
        task_id = str(uuid.uuid4())
        async with self.db.write() as session:
            repo = ImageRepository(session)
            locked = await repo.get(image_id, lock=True)
            if locked is None:
                raise NotFound(f"No image found with ID {image_id}")
            _require_queued(locked.status)
            held_by = (await repo.properties(image_id)).get(IMPORT_LOCK)
            if held_by:
                await take_stale_lock(repo, self.settings, image_id, held_by)
            await repo.set_properties(image_id, {IMPORT_LOCK: task_id})
            await TaskRepository(session).add(
                Task(
                    id=task_id,
                    type=TASK_TYPE_LOCATION_IMPORT,
                    status=TaskStatus.PENDING,
                    input={"image_id": image_id, "loc_url": url, "validation_data": validation},
                    owner=ctx.project_id,
                    image_id=image_id,
                    user_id=ctx.user_id,
                    request_id=ctx.request_id,
                )
            )
        # After commit only: a message must never name a task that was rolled back.
        await self.publisher.publish_import(task_id)
        return task_id


def _require_queued(status: str) -> None:
    if status != ImageStatus.QUEUED:
        raise Conflict(f"It's not allowed to add locations if image status is {status}.")
