"""glance-download's fetch: an image of another region's image service, read as the caller.

As in Glance: the endpoint of the `image` service in `glance_region` with interface
`glance_service_interface` comes from the caller's Keystone catalog (GET /v3/auth/catalog with
the caller's token, which the API sealed into the task), the remote image's record is read
with the same token (it must be active, with a size), its data is streamed into the staging
store through web-download's downloader (URL filter, size cap, quota, exact length), and then
the image takes the remote disk_format, container_format and the properties named by
`[glance_download_properties] extra_properties`. The import pipeline goes on from there
(plugins, inspection, stores). What the import changed of the image's metadata is kept in the
task (METADATA_BEFORE) so that a failure, at any later step, puts it back.
"""

from __future__ import annotations

import copy
import logging
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final

import httpx

from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.tasks import TaskRepository
from glimpse.db.tables import Image
from glimpse.domain.images import (
    MUTABLE_ATTRIBUTES,
    READ_ONLY_ATTRIBUTES,
    RESERVED_ATTRIBUTES,
    RESERVED_PROPERTY_PREFIX,
    ImageStatus,
)
from glimpse.domain.redaction import redact_text
from glimpse.domain.tasks import IMPORT_LOCK
from glimpse.keymanager.sealing import TokenSealer
from glimpse.net.deadline import DeadlineExceeded, within
from glimpse.net.session import session_client
from glimpse.services.glance_download import METADATA_BEFORE, USER_TOKEN
from glimpse_worker.pipelines.download import DownloadFailed, download, filtered_client

if TYPE_CHECKING:
    from glimpse_worker.pipelines.sources import ImportJob
    from glimpse_worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)

CALL_TIMEOUT: Final = 30.0  # seconds per socket wait of a catalog or metadata call
CALL_DEADLINE: Final = 60.0  # seconds for a whole call
_CORE: Final = READ_ONLY_ATTRIBUTES | RESERVED_ATTRIBUTES | MUTABLE_ATTRIBUTES


class GlanceDownloadFailed(Exception):
    """The remote image cannot be had; the message says why (never with the token)."""


async def fetch_from_glance(job: ImportJob) -> Image:
    """Stage the remote image's data and give the image its metadata; the image as the
    import goes on with it."""
    method: dict[str, Any] = job.request["method"]
    region, interface = method["glance_region"], method["glance_service_interface"]
    remote_id = method["glance_image_id"]
    token = _caller_token(job)
    endpoint = await image_endpoint(job.runtime, token, region, interface)
    remote = await _remote_image(job.runtime, endpoint, token, remote_id, region)
    size = remote.get("size")
    if isinstance(size, bool) or not isinstance(size, int):
        msg = f"Size attribute of remote image {remote_id} could not be determined"
        raise GlanceDownloadFailed(msg)
    try:
        await download(
            job.runtime,
            job.image,
            f"{endpoint}/v2/images/{remote_id}/file",
            job.progress,
            headers={"X-Auth-Token": token},
            size=size,
            method="glance-download",
        )
    except DownloadFailed as exc:
        raise GlanceDownloadFailed(str(exc)) from exc
    # "Copied N MiB" counts the copy into the stores, as in Glance, so it starts over.
    job.progress.done = 0
    return await _take_metadata(job, remote)


def _caller_token(job: ImportJob) -> str:
    sealed = job.task.input.get(USER_TOKEN)
    key = job.runtime.settings.key_manager.token_encryption_key
    token = TokenSealer(key).unseal(sealed) if isinstance(sealed, str) and key is not None else None
    if token is None:
        msg = (
            "glance-download has no Keystone token of the caller to act with (the import was "
            "not made with a Keystone token, or [key_manager] token_encryption_key changed)"
        )
        raise GlanceDownloadFailed(msg)
    return token


async def image_endpoint(runtime: WorkerRuntime, token: str, region: str, interface: str) -> str:
    """The URL of the image service in `region` (case-insensitive, as Glance compares it)
    with `interface`, from the catalog Keystone gives the caller's token."""
    keystone = runtime.settings.keystone_authtoken
    if not keystone.auth_url:
        msg = "glance-download needs [keystone_authtoken] auth_url to read the catalog"
        raise GlanceDownloadFailed(msg)
    url = f"{keystone.identity_url}/auth/catalog"
    async with session_client(keystone, timeout=CALL_TIMEOUT) as http:
        try:
            response = await within(
                CALL_DEADLINE, "Keystone", http.get(url, headers={"X-Auth-Token": token})
            )
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            msg = f"Keystone's catalog could not be read: {type(exc).__name__}"
            raise GlanceDownloadFailed(msg) from None
    if response.status_code == HTTPStatus.UNAUTHORIZED:
        msg = "Keystone refused the caller's token (expired or revoked) for the catalog"
        raise GlanceDownloadFailed(msg)
    if response.status_code != HTTPStatus.OK:
        msg = f"Keystone answered {response.status_code} to the catalog request"
        raise GlanceDownloadFailed(msg)
    for service in _json(response, "Keystone's catalog").get("catalog") or []:
        if not isinstance(service, dict) or service.get("type") != "image":
            continue
        for endpoint in service.get("endpoints") or []:
            where = str(endpoint.get("region_id") or endpoint.get("region") or "")
            if where.lower() == region.lower() and endpoint.get("interface") == interface:
                return str(endpoint["url"]).rstrip("/")
    msg = f"No {interface} image service endpoint for region {region} in the Keystone catalog"
    raise GlanceDownloadFailed(msg)


async def _remote_image(
    runtime: WorkerRuntime, endpoint: str, token: str, image_id: str, region: str
) -> dict[str, Any]:
    url = f"{endpoint}/v2/images/{image_id}"
    # No redirect is followed: the caller's token goes to the catalog's endpoint only.
    async with filtered_client(runtime, follow_redirects=False) as http:
        try:
            response = await within(
                CALL_DEADLINE,
                "the remote image service",
                http.get(url, headers={"X-Auth-Token": token}),
            )
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            detail = f"{type(exc).__name__}: {redact_text(str(exc))}"
            msg = f"Image {image_id} of region {region} could not be read: {detail}"
            raise GlanceDownloadFailed(msg) from None
    if response.status_code == HTTPStatus.NOT_FOUND:
        msg = f"Image {image_id} was not found in region {region}"
        raise GlanceDownloadFailed(msg)
    if response.status_code != HTTPStatus.OK:
        msg = f"Region {region} answered {response.status_code} for image {image_id}"
        raise GlanceDownloadFailed(msg)
    remote = _json(response, f"Image {image_id} of region {region}")
    if remote.get("status") != ImageStatus.ACTIVE:
        msg = f"Source image status should be active, not {remote.get('status')}"
        raise GlanceDownloadFailed(msg)
    return remote


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise GlanceDownloadFailed(f"{what}: the answer is not a JSON object")
    return body


def copied_properties(remote: dict[str, Any], prefixes: list[str]) -> dict[str, str]:
    """The remote image's properties named by the prefixes (never a core attribute nor a
    reserved os_glance_* one)."""
    return {
        key: value
        for key, value in remote.items()
        if isinstance(value, str)
        and key not in _CORE
        and not key.startswith(RESERVED_PROPERTY_PREFIX)
        and any(key.startswith(prefix) for prefix in prefixes)
    }


async def _take_metadata(job: ImportJob, remote: dict[str, Any]) -> Image:
    """The remote formats and properties onto the image, under its row lock while this task
    holds its import lock; what they replace is kept first (a re-run keeps the first)."""
    image_id = job.image.id
    prefixes = job.runtime.settings.glance_download_properties.extra_properties
    properties = copied_properties(remote, prefixes)
    async with job.runtime.database.write() as session:
        repo, tasks = ImageRepository(session), TaskRepository(session)
        image = await repo.get(image_id, lock=True)
        current = await repo.properties(image_id) if image is not None else {}
        task = await tasks.get(job.task.id)
        if image is None or image.status != ImageStatus.IMPORTING or task is None:
            raise GlanceDownloadFailed(f"Image {image_id} is no longer importing")
        if current.get(IMPORT_LOCK) != job.task.id:
            raise GlanceDownloadFailed(f"Image {image_id} is locked by another import")
        saved = task.input.get(METADATA_BEFORE)
        before: dict[str, Any] = (
            copy.deepcopy(saved)
            if isinstance(saved, dict)
            else {
                "disk_format": image.disk_format,
                "container_format": image.container_format,
                "properties": {},
            }
        )
        kept = before["properties"]
        for key in properties:
            kept.setdefault(key, current.get(key))
        await tasks.update_input(job.task.id, {**task.input, METADATA_BEFORE: before})
        formats = {
            "disk_format": remote.get("disk_format"),
            "container_format": remote.get("container_format"),
        }
        await repo.claim_status(image_id, ImageStatus.IMPORTING, ImageStatus.IMPORTING, **formats)
        await repo.set_properties(image_id, dict(properties))
    # Read afresh: the session above holds the image as it was before the update.
    async with job.runtime.database.read() as session:
        updated = await ImageRepository(session).get(image_id)
    if updated is None:
        raise GlanceDownloadFailed(f"Image {image_id} is gone")
    log.info("glance-download of image %s: metadata of the remote image taken", image_id)
    return updated


async def put_back_metadata(repo: ImageRepository, image_id: str, before: object) -> None:
    """A failed import's revert (image row locked, status queued again): the formats and the
    properties the import replaced, as they were."""
    if not isinstance(before, dict):
        return
    await repo.claim_status(
        image_id,
        ImageStatus.QUEUED,
        ImageStatus.QUEUED,
        disk_format=before.get("disk_format"),
        container_format=before.get("container_format"),
    )
    kept = before.get("properties")
    if isinstance(kept, dict) and kept:
        await repo.set_properties(image_id, dict(kept))
