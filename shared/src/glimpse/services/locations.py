"""Where an image's data lives: listing locations (2.17), the older JSON-patch `/locations`
operations when `show_multiple_locations` is on, and removing data from one store (2.10).
Adding a location with the 2.17 API is a task (glimpse.services.location_import).

A location may only point at data the caller is entitled to: users other than services may add
only http(s) URLs that pass the URL filter (OSSN-0065, OSSN-0090), and a URL must belong to an
enabled store. As in Glance, one URL may be a location of many images: the data of such a
location is removed only with the last image holding it (DeletionService).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image, ImageLocation
from glimpse.domain.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    LimitExceeded,
    NotFound,
)
from glimpse.domain.images import ImageStatus
from glimpse.domain.locations import LocationPlan, LocationValue, check_visible, plan
from glimpse.domain.patch import Operation
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.net.urlfilter import URLFilter, URLRefused
from glimpse.services.access import authorize, authorized_image
from glimpse.services.deletion import DeletionService
from glimpse.stores.base import StoreError
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)

SERVICE_ROLE = "service"
HTTP_STORE_TYPE = "http"
_HASH_KEYS = ("os_hash_algo", "os_hash_value", "checksum")


@dataclass(frozen=True, slots=True)
class ResolvedLocation:
    """A URL checked for the caller: the store that holds it and the size of its data."""

    url: str
    store_id: str
    size: int
    metadata: dict[str, str]


def validation_values(data: object, hashing_algorithm: str) -> dict[str, str]:
    """Check `validation_data` ({os_hash_algo, os_hash_value, checksum}) and return it."""
    if data is None:
        return {}
    if not isinstance(data, dict) or not set(data) <= set(_HASH_KEYS):
        raise InvalidInput(f"validation_data may hold only {', '.join(_HASH_KEYS)}")
    values = {key: value for key, value in data.items() if value is not None}
    if not all(isinstance(value, str) for value in values.values()):
        raise InvalidInput("validation_data values must be strings")
    algo = values.setdefault("os_hash_algo", hashing_algorithm)
    if algo not in hashlib.algorithms_available:
        raise InvalidInput(f"os_hash_algo {algo} is not a supported hashing algorithm")
    for key, digest_size in (
        ("os_hash_value", hashlib.new(algo).digest_size),
        ("checksum", hashlib.md5(usedforsecurity=False).digest_size),
    ):
        if key not in values:
            continue
        try:
            raw = bytes.fromhex(values[key])
        except ValueError:
            raise InvalidInput(f"{key} ({values[key]}) is not a valid hexadecimal value") from None
        if len(raw) != digest_size:
            raise InvalidInput(
                f"{key}: ({values[key]}) is not the correct size for ({algo}) "
                f"(should be ({digest_size}) bytes)"
            )
    if "os_hash_value" not in values:
        del values["os_hash_algo"]
    return values


def check_against_image(image: Image, data: Mapping[str, Any]) -> None:
    """validation_data on a PATCH, as Glance checks it before its format: a value the image
    already has must match it exactly, and new values apply only to a queued image (409)."""
    new = [key for key in _HASH_KEYS if key in data and data[key] != getattr(image, key)]
    for key in new:
        if getattr(image, key):
            raise Conflict(f"{key} is already set with a different value")
    if new and image.status != ImageStatus.QUEUED:
        keys = ", ".join(new)
        when = "when image status is 'queued'"
        raise Conflict(f"New value(s) for {keys} may only be provided {when}")


def is_trusted(ctx: RequestContext) -> bool:
    """Services (Nova, Cinder) and admins may use any store's URLs; others only http(s)."""
    return ctx.is_admin or SERVICE_ROLE in ctx.roles or SERVICE_ROLE in ctx.service_roles


def http_store_ids(stores: StoreRegistry) -> list[str]:
    return [sid for sid in stores.ids() if stores.types.get(sid) == HTTP_STORE_TYPE]


def is_web(url: str) -> bool:
    return urlsplit(url).scheme.lower() in ("http", "https")


async def check_fetchable(url_filter: URLFilter, url: str) -> None:
    """400 unless the http(s) `url` passes [import_filtering_opts]."""
    try:
        await url_filter.check(url)
    except URLRefused as exc:
        log.info("location refused: %s", redact_text(str(exc)))
        raise InvalidInput(
            f"URI for add location does not pass filtering: {redact_url(url)}"
        ) from None


async def locate(
    stores: StoreRegistry,
    url_filter: URLFilter,
    url: str,
    metadata: Mapping[str, object] | None = None,
) -> ResolvedLocation:
    """The enabled store that serves `url` and the size of its data there; 400 ("Invalid
    location") when none does. An http(s) URL must pass the URL filter and belongs to an http
    store; any other URL to a store of another type (a file store only takes files under its
    own directory)."""
    web = is_web(url)
    if web:
        await check_fetchable(url_filter, url)
    candidates = [sid for sid in stores.ids() if (sid in http_store_ids(stores)) == web]
    for store_id in candidates:
        store = stores.get(store_id)
        if store is None:
            continue
        try:
            size = await store.size(url)
        except (StoreError, OSError) as exc:
            log.info(
                "location %s is not readable in store %s: %s",
                redact_url(url),
                store_id,
                redact_text(str(exc)),
            )
            continue
        extra = {str(k): str(v) for k, v in (metadata or {}).items()}
        return ResolvedLocation(url, store_id, size, {**extra, "store": store_id})
    raise InvalidInput(f"Invalid location: {redact_url(url)}")


class LocationService:
    def __init__(self, settings: Settings, database: Database, stores: StoreRegistry) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self.url_filter = URLFilter(settings.import_filtering_opts)
        self.deletion = DeletionService(settings, database, stores)

    async def resolve(
        self, ctx: RequestContext, url: object, metadata: object = None, *, patching: bool = False
    ) -> ResolvedLocation:
        """Which store holds `url` and how big its data is, if `ctx` may point an image at it.

        A user (not a service or admin) may only name an http(s) URL with an http store
        enabled. As in Glance, the 2.17 API refuses anything else with 403, JSON-patch on
        /locations with 400 (no store takes the URL: "Invalid location")."""
        if not isinstance(url, str) or not url:
            raise InvalidInput("A location needs a url string.")
        if metadata is not None and not isinstance(metadata, dict):
            raise InvalidInput("Location metadata must be an object.")
        if not is_trusted(ctx) and (not is_web(url) or not http_store_ids(self.stores)):
            if patching:
                raise InvalidInput(f"Invalid location: {url}")
            raise Forbidden("http store must be enabled to use location API by normal user.")
        return await locate(self.stores, self.url_filter, url, metadata)

    # -- 2.17: GET /v2/images/{id}/locations ----------------------------------------------

    async def list_locations(self, ctx: RequestContext, image_id: str) -> list[dict[str, Any]]:
        async with self.db.read() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "fetch_image_location")
            locations = (await repo.record(image)).locations
        return [
            {"url": redact_url(loc.value), "metadata": loc.normalized_metadata()}
            for loc in self.stores.by_weight(locations)
        ]

    # -- JSON-patch on /locations (show_multiple_locations) -------------------------------

    async def prepare_patch(
        self, ctx: RequestContext, image_id: str, operations: list[Operation]
    ) -> PreparedPatch:
        """Plan the location changes and check every new URL, before any write transaction
        (checking reads the stores)."""
        async with self.db.read() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "modify_image")
            current = self.stores.by_weight((await repo.record(image)).locations)
            check_visible(operations, show_multiple_locations=self.settings.show_multiple_locations)
            before = [LocationValue(loc.value, loc.normalized_metadata()) for loc in current]
            shown = {redact_url(loc.value): loc.value for loc in current}
            planned = plan(before, operations, image.status, shown)
            if planned.removed:
                await authorize(repo, ctx, image, "delete_image_location")
            if planned.added:
                await authorize(repo, ctx, image, "set_image_location")
            check_against_image(image, planned.validation_data)
        resolved = [
            await self.resolve(ctx, value.url, value.metadata, patching=True)
            for value in planned.added
        ]
        validation = validation_values(
            planned.validation_data or None, self.settings.hashing_algorithm
        )
        return PreparedPatch(
            [loc.value for loc in current],
            planned,
            resolved,
            validation,
            image.status,
            ctx.request_id,
        )

    async def apply_patch(
        self, repo: ImageRepository, image: Image, prepared: PreparedPatch
    ) -> list[ImageLocation]:
        """Write a prepared plan inside the caller's transaction; return the locations it
        claimed, whose data the caller removes once this commits."""
        current = self.stores.by_weight((await repo.record(image)).locations)
        if [loc.value for loc in current] != prepared.expected or image.status != prepared.status:
            raise Conflict("The image changed while its locations were being updated.")
        quota = self.settings.image_location_quota
        if 0 <= quota < len(prepared.plan.result):
            raise LimitExceeded(
                "The limit has been exceeded on the number of allowed image locations. "
                f"Attempted: {len(prepared.plan.result)}, Maximum: {quota}"
            )
        removed: list[ImageLocation] = []
        kept = {value.url: value.metadata for value in prepared.plan.result}
        for existing in current:
            if existing.value in prepared.plan.removed:
                await repo.retire_location(existing, request_id=prepared.request_id)
                removed.append(existing)
            elif existing.value in kept:
                await repo.set_location_metadata(existing, kept[existing.value])
        for location in prepared.resolved:
            await repo.add_location(image.id, location.url, location.metadata)
        if image.status == ImageStatus.QUEUED and prepared.resolved:
            _activate(image, prepared.resolved[0].size, prepared.validation)
        return removed

    # -- 2.10: DELETE /v2/stores/{store_id}/{image_id} ----------------------------------

    async def delete_from_store(self, ctx: RequestContext, store_id: str, image_id: str) -> None:
        """Remove an active image's data from one store, keeping it in the others."""
        if not self.settings.multistore:
            raise NotFound("Not Found")
        store = self.stores.get(store_id)
        if store is None:
            raise Conflict(f"The selected store {store_id} is not available on this node.")
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(
                repo,
                ctx,
                image_id,
                "get_image_location",
                lock=True,
                missing=NotFound(f"Failed to find image {image_id}"),
            )
            await authorize(repo, ctx, image, "delete_image_location")
            if image.status != ImageStatus.ACTIVE:
                raise Conflict(
                    "It's not allowed to remove image data from store if image status is not "
                    "'active'"
                )
            locations = (await repo.record(image)).locations
            if len(locations) == 1:
                raise Forbidden(
                    "Cannot delete image data from the only store containing it. Consider "
                    "deleting the image instead."
                )
            target = next((loc for loc in locations if loc.store_id == store_id), None)
            if target is None:
                raise NotFound(f"Image {image_id} is not stored in store {store_id}.")
            await repo.retire_location(target, request_id=ctx.request_id)
            await repo.touch(image)
        # The location is gone from the image once committed; only then does the data go, so a
        # reader never follows a location whose data was removed first.
        await self.deletion.remove_claimed(target)


@dataclass(frozen=True, slots=True)
class PreparedPatch:
    expected: list[str]
    plan: LocationPlan
    resolved: list[ResolvedLocation]
    validation: dict[str, str]
    status: str
    request_id: str  # of the PATCH: the scrubber's lines about removed data carry it


def _activate(image: Image, size: int, validation: Mapping[str, str]) -> None:
    """A queued image given data by location: active, sized, and hashed as the caller says."""
    image.status = ImageStatus.ACTIVE
    image.size = size
    image.checksum = validation.get("checksum")
    image.os_hash_algo = validation.get("os_hash_algo")
    image.os_hash_value = validation.get("os_hash_value")
