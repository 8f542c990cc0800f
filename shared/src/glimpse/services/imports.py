"""Interoperable import, API side: the methods on offer, staging, and starting an import.

Staging streams the request into the reserved staging store (queued -> uploading). An import
moves the image to importing, takes the `os_glance_import_task` lock and writes the task row in
one transaction; the job message (the task id only) is sent after it commits. A worker does the
rest (glimpse_worker.pipelines.import_).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from glimpse import unified_limits
from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Image, Task, utcnow
from glimpse.domain.errors import Conflict, InvalidInput, NotFound
from glimpse.domain.images import ImageStatus, transition
from glimpse.domain.imports import (
    USER_TOKEN,
    ImportOptions,
    ImportRequest,
    ImportTaskInput,
    refused_uri_message,
)
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.domain.tasks import (
    COPY_IMAGE,
    FAILED_IMPORT,
    GLANCE_DIRECT,
    GLANCE_DOWNLOAD,
    IMPORT_LOCK,
    IMPORTING_TO_STORES,
    TASK_TYPE_IMPORT,
    WEB_DOWNLOAD,
    TaskStatus,
    lock_is_stale,
    store_list,
)
from glimpse.keymanager.sealing import TokenSealer
from glimpse.limits import StorageQuota, capped
from glimpse.net.urlfilter import URLFilter, URLRefused
from glimpse.services import signatures
from glimpse.services.access import authorized_image
from glimpse.stores.base import Capability
from glimpse.stores.metering import Meter
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Admission:
    """An import request at the moment it is admitted (inside the request's transaction)."""

    repo: ImageRepository
    ctx: RequestContext
    image: Image
    request: ImportRequest


class Publisher(Protocol):
    async def publish_import(self, task_id: str) -> bool: ...


async def take_stale_lock(
    repo: ImageRepository, settings: Settings, image_id: str, holder: str
) -> None:
    """Take over the import lock held by task `holder` if that task is gone or stale
    (lock_is_stale); a live holder is a 409. The stale task fails, and the stores it was
    working on leave the image's progress properties."""
    tasks = TaskRepository(repo.session)
    task = await tasks.get(holder)
    now = utcnow()
    if task is None:
        stale = lock_is_stale(None, None, None, now)
    else:
        # A pending task has done nothing since it was created: the scrubber's re-sends
        # touch updated_at, and must not keep a lock no worker is working on.
        pending = task.status == TaskStatus.PENDING
        last_update = task.created_at if pending else task.updated_at or task.created_at
        stale = lock_is_stale(task.status, last_update, task.lease_until, now)
    if not stale:
        raise Conflict(f"Image {image_id} has an import in progress.")
    log.warning("image %s: taking over the stale import lock of task %s", image_id, holder)
    cleared: dict[str, str | None] = {IMPORT_LOCK: None}
    if task is not None:
        await tasks.finish(
            task.id,
            TaskStatus.FAILURE,
            message="Expired lock preempted",
            result=None,
            expires_at=now + timedelta(hours=settings.task.task_time_to_live),
        )
        if USER_TOKEN in task.input:  # a glance-download's: kept no longer than its task
            kept = {key: value for key, value in task.input.items() if key != USER_TOKEN}
            await tasks.update_input(task.id, kept)
        properties = await repo.properties(image_id)
        theirs = ImportTaskInput.from_task(task.type, task.input).backend or ()
        for key in (IMPORTING_TO_STORES, FAILED_IMPORT):
            if key in properties:
                left = [s for s in store_list(properties[key]) if s not in theirs]
                cleared[key] = ",".join(left)
    await repo.set_properties(image_id, cleared)


class ImportService:
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
        self.quota = StorageQuota(settings, database)

    def info(self) -> dict[str, Any]:
        return {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(self.settings.enabled_import_methods),
            }
        }

    # -- staging -------------------------------------------------------------------------

    async def _claim_stage(
        self, ctx: RequestContext, image_id: str, body_size: int | None
    ) -> tuple[str | None, int, StorageQuota]:
        """queued -> uploading, reserving storage under the owner's quota with the claim;
        the image's owner, the bytes it may hold so far and the quota its data streams under.
        With Keystone's limits the project's image_stage_total (the size announced) and
        image_count_uploading (this image included) are checked in the same transaction."""
        limits = await unified_limits.read_limits(self.settings, ctx.project_id)
        quota = unified_limits.size_quota(self.quota, ctx.project_id, limits)
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "modify_image", lock=True)
            transition(ImageStatus(image.status), ImageStatus.UPLOADING)
            await repo.claim_status(image_id, ImageStatus.QUEUED, ImageStatus.UPLOADING)
            deltas = {
                unified_limits.IMAGE_STAGE_TOTAL: unified_limits.mib_of(body_size),
                unified_limits.IMAGE_COUNT_UPLOADING: 0,
            }
            await unified_limits.check_in(session, ctx.project_id, limits, deltas)
            granted = await quota.reserve_claim(session, image_id, image.owner, body_size)
            return image.owner, granted, quota

    async def _unstage(self, image_id: str) -> None:
        async with self.db.write() as session:
            await ImageRepository(session).claim_status(
                image_id, ImageStatus.UPLOADING, ImageStatus.QUEUED, {"size": None}
            )
            await ReservationRepository(session).release(image_id)

    async def stage(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: AsyncIterable[bytes],
        body_size: int | None = None,
    ) -> None:
        """Stream `chunks` into the staging store; `body_size` is the request's
        Content-Length (None when chunked)."""
        if GLANCE_DIRECT not in self.settings.enabled_import_methods:
            raise NotFound("The stage API is not available: glance-direct is not enabled.")
        owner, granted, quota = await self._claim_stage(ctx, image_id, body_size)
        cap = self.settings.image_size_cap
        meter = Meter(self.settings.hashing_algorithm)
        data = quota.guard(
            image_id,
            owner,
            capped(chunks, meter, cap),
            granted=granted,
        )
        staging = self.stores.staging
        try:
            stored = await staging.put(image_id, data)
        except BaseException:
            # The store leaves no partial object; the image takes data again.
            await asyncio.shield(self._unstage(image_id))
            raise
        try:
            async with self.db.write() as session:
                # The staged size counts against the owner's quota until the import ends, in
                # the reservation's stead.
                kept = await ImageRepository(session).record_data(
                    image_id, ImageStatus.UPLOADING, {"size": meter.size}
                )
                await ReservationRepository(session).release(image_id)
        except BaseException:
            await asyncio.shield(staging.delete_if_present(stored.location))
            await asyncio.shield(self._unstage(image_id))
            raise
        if not kept:
            # Deleted meanwhile: nothing will import this data.
            await staging.delete_if_present(stored.location)

    # -- import --------------------------------------------------------------------------

    def _options(self) -> ImportOptions:
        writable = []
        for store_id in self.stores.ids():
            store = self.stores.get(store_id)
            if store is not None and Capability.WRITE in store.capabilities:
                writable.append(store_id)
        return ImportOptions(
            methods=tuple(self.settings.enabled_import_methods),
            multistore=self.settings.multistore,
            default_store=self.stores.default_id,
            writable=tuple(writable),
        )

    def _known_stores(self, targets: tuple[str, ...]) -> None:
        """Once the caller may import: a store that is not enabled is 409, as in Glance (its
        store layer's UnknownScheme); an enabled one that cannot be written is 400."""
        writable = self._options().writable
        for store_id in targets:
            if store_id not in self.stores.ids():
                raise Conflict(f"Store for identifier {store_id} not found")
            if store_id not in writable:
                raise InvalidInput(f"Store {store_id} is read-only.")

    async def import_image(
        self,
        ctx: RequestContext,
        image_id: str,
        body: dict[str, Any],
        header_store: str | None = None,
    ) -> str | None:
        """Start an import; returns the task id (None: nothing to do, as for a copy to every
        store when the image is in all of them already). The job message follows the
        commit."""
        request = ImportRequest.from_body(body, header_store, self._options())
        method = request.method.name
        await self._vet(request)
        user_token = self._sealed_token(ctx, method)
        task_id = str(uuid.uuid4())
        limits = await unified_limits.read_limits(self.settings, ctx.project_id)
        async with self.db.write() as session:
            # As Glance: a project over its image_size_total imports nothing (the job checks
            # what the import adds, see glimpse_worker.pipelines.limits).
            deltas = {unified_limits.IMAGE_SIZE_TOTAL: 0}
            await unified_limits.check_in(session, ctx.project_id, limits, deltas)
            repo = ImageRepository(session)
            # Copying is its own policy (admins by default); other methods change the image.
            action = "copy_image" if method == COPY_IMAGE else "modify_image"
            image = await authorized_image(repo, ctx, image_id, action, lock=True)
            properties = await repo.properties(image_id)
            # The worker verifies a signed image's data with the certificate it reads in the
            # user's name; a copy is of data verified already.
            if method != COPY_IMAGE and signatures.requested(properties) is not None:
                user_token = signatures.sealed_token(self.settings, ctx)
            held_by = properties.get(IMPORT_LOCK)
            if held_by:
                await take_stale_lock(repo, self.settings, image_id, held_by)
            self._known_stores(request.stores)
            if image.disk_format is None or image.container_format is None:
                raise InvalidInput("container_format and disk_format must be set before import.")
            request = await self._admit(Admission(repo, ctx, image, request))
            targets = request.stores
            if not targets:
                return None
            # As Glance: the stores in progress, sorted; a store tried again is no longer
            # failed; both keys stay on the image (empty once done) after the import.
            failed = store_list((await repo.properties(image_id)).get(FAILED_IMPORT))
            await repo.set_properties(
                image_id,
                {
                    IMPORT_LOCK: task_id,
                    IMPORTING_TO_STORES: ",".join(sorted(targets)),
                    FAILED_IMPORT: ",".join(s for s in failed if s not in targets),
                },
            )
            await TaskRepository(session).add(
                Task(
                    id=task_id,
                    type=TASK_TYPE_IMPORT,
                    status=TaskStatus.PENDING,
                    input=ImportTaskInput(
                        image_id,
                        request,
                        backend=targets,
                        # What the worker may need of the caller (inject_image_metadata).
                        user_roles=tuple(sorted(ctx.roles)),
                        user_token=user_token,
                    ).to_json(),
                    owner=ctx.project_id,
                    image_id=image_id,
                    user_id=ctx.user_id,
                    request_id=ctx.request_id,
                )
            )
        # After commit only: a message must never name a task that was rolled back.
        await self.publisher.publish_import(task_id)
        return task_id

    def _sealed_token(self, ctx: RequestContext, method: str) -> str | None:
        """What the worker must have of the caller beyond the request: for glance-download
        the caller's token (sealed), with which it reads the catalog and the remote image."""
        key = self.settings.key_manager.token_encryption_key
        if method != GLANCE_DOWNLOAD or ctx.auth_token is None or key is None:
            return None  # without a token the task fails, saying why
        return TokenSealer(key).seal(ctx.auth_token)

    async def _vet(self, request: ImportRequest) -> None:
        """The method's checks that need I/O, made before the write transaction (which must
        stay short): web-download's URI, whose name is resolved here (glance-download's
        parameters were checked by ImportRequest.from_body, before the policy check as in
        Glance)."""
        uri = request.method.uri
        if request.method.name == WEB_DOWNLOAD and uri is not None:
            try:
                await URLFilter(self.settings.import_filtering_opts).check(uri)
            except URLRefused as exc:
                log.debug("refused to fetch %s: %s", redact_url(uri), redact_text(str(exc)))
                raise InvalidInput(refused_uri_message(uri)) from None

    async def _admit(self, admission: Admission) -> ImportRequest:
        """The method's own checks and status change; returns the request as admitted (its
        stores those to import into)."""
        request, image = admission.request, admission.image
        method = request.method.name
        if method == GLANCE_DIRECT:
            await self._begin(admission.repo, image, ImageStatus.UPLOADING, "stage its data first")
            return request
        if method in (WEB_DOWNLOAD, GLANCE_DOWNLOAD):
            if image.status != ImageStatus.QUEUED:
                raise Conflict(f"Image needs to be in 'queued' state to use '{method}' method")
            await self._begin(admission.repo, image, ImageStatus.QUEUED, "it already has data")
            # Its inputs checked by from_body and _vet; the worker fetches (and checks a URI
            # again).
            return request
        if method == COPY_IMAGE:
            return await self._admit_copy(admission)
        raise InvalidInput(f"Import method {method} is not available in this release.")

    async def _admit_copy(self, admission: Admission) -> ImportRequest:
        """An active image stays active; the stores holding it already are not written again
        (dropped from all_stores, refused when named)."""
        repo, image, request = admission.repo, admission.image, admission.request
        if image.status != ImageStatus.ACTIVE:
            raise Conflict(
                f"Image {image.id} is not active (it is {image.status}): only active images "
                "can be copied."
            )
        record = await repo.record(image)
        holding = {loc.store_id or self.stores.default_id for loc in record.locations}
        if request.all_stores:
            return request.with_stores(tuple(s for s in request.stores if s not in holding))
        for store_id in request.stores:
            if store_id in holding:
                raise InvalidInput(f"Image is already present at store '{store_id}'")
        return request

    @staticmethod
    async def _begin(repo: ImageRepository, image: Image, expected: ImageStatus, hint: str) -> None:
        """expected -> importing, or 409 saying what the caller must do first."""
        if image.status != expected:
            raise Conflict(
                f"Image {image.id} is not in {expected} status (it is {image.status}): {hint}."
            )
        if not await repo.claim_status(image.id, expected, ImageStatus.IMPORTING):
            raise Conflict(f"Image {image.id} has an import in progress.")
