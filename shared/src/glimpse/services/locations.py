"""Where an image's data lives: adding and listing locations (2.17, and the older JSON-patch
`/locations` operations when `show_multiple_locations` is on), and removing data from one
store (2.10).

A location may only point at data the caller is entitled to: users other than services may add
only http(s) URLs that pass the URL filter (OSSN-0065, OSSN-0090); a URL must belong to an
enabled store; and no URL already used by another image is accepted, whoever asks, because
deleting either image would then remove the other's data.
"""

from __future__ import annotations

import asyncio
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
    StoreUnavailable,
)
from glimpse.domain.images import ImageStatus
from glimpse.domain.locations import LocationPlan, LocationValue, check_visible, plan
from glimpse.domain.patch import Operation
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.net.deadline import DeadlineExceeded, acquire_within, within
from glimpse.net.urlfilter import URLFilter, URLRefused
from glimpse.services.access import authorize, authorized_image
from glimpse.services.deletion import DeletionService
from glimpse.stores.base import StoreError
from glimpse.stores.metering import Meter, metered
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


def _is_trusted(ctx: RequestContext) -> bool:
    """Services (Nova, Cinder) and admins may use any store's URLs; others only http(s)."""
    return ctx.is_admin or SERVICE_ROLE in ctx.roles or SERVICE_ROLE in ctx.service_roles


class LocationService:
    def __init__(self, settings: Settings, database: Database, stores: StoreRegistry) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self.url_filter = URLFilter(settings.import_filtering_opts)
        self.deletion = DeletionService(settings, database, stores)
        # Location additions reading their data at once in this process, at most.
        self._readers = asyncio.Semaphore(settings.location_add_concurrency)

    # -- checking a URL -------------------------------------------------------------------

    def _http_store_ids(self) -> list[str]:
        return [sid for sid in self.stores.ids() if self.stores.types.get(sid) == HTTP_STORE_TYPE]

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
        scheme = urlsplit(url).scheme.lower()
        web = scheme in ("http", "https")
        if not _is_trusted(ctx) and (not web or not self._http_store_ids()):
            if patching:
                raise InvalidInput(f"Invalid location: {url}")
            raise Forbidden("http store must be enabled to use location API by normal user.")
        if web:
            try:
                await self.url_filter.check(url)
            except URLRefused as exc:
                log.info("location refused: %s", redact_text(str(exc)))
                raise InvalidInput(
                    f"URI for add location does not pass filtering: {redact_url(url)}"
                ) from None
            candidates = self._http_store_ids()
        else:
            candidates = [sid for sid in self.stores.ids() if sid not in self._http_store_ids()]
        for store_id in candidates:
            store = self.stores.get(store_id)
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

    async def check_unshared(self, repo: ImageRepository, image_id: str, url: str) -> None:
        if await repo.location_in_use(url, exclude_image=image_id):
            raise InvalidInput(f"Invalid location: {redact_url(url)}")

    async def _hash(self, location: ResolvedLocation, algo: str) -> Meter:
        """Read the data once to count and hash it, as the image's own upload would."""
        store = self.stores.get(location.store_id)
        if store is None:  # pragma: no cover -- resolve() only returns enabled stores
            raise InvalidInput(f"Invalid location: {redact_url(location.url)}")
        meter = Meter(algo)
        cap = self.settings.image_size_cap

        def too_big() -> LimitExceeded:
            return LimitExceeded(f"The image is too large: image_size_cap is {cap} bytes")

        async for _ in metered(store.get(location.url), meter, limit=cap, on_limit=too_big):
            pass
        return meter

    # -- 2.17: POST and GET /v2/images/{id}/locations ------------------------------------

    async def add_location(
        self, ctx: RequestContext, image_id: str, url: object, validation_data: object
    ) -> None:
        """Give a queued image its data from `url`; the data is read once to hash it and to
        check `validation_data`, then the image becomes active. At most
        location_add_concurrency additions read data at once; waiting for a turn, reaching the
        URL and reading its data take location_add_timeout seconds in all."""
        wanted = validation_values(validation_data, self.settings.hashing_algorithm)
        async with self.db.read() as session:
            image = await authorized_image(
                ImageRepository(session), ctx, image_id, "add_image_location"
            )
        _require_status(image, (ImageStatus.QUEUED,), "add locations")
        loop = asyncio.get_running_loop()
        end = loop.time() + self.settings.location_add_timeout
        if not await acquire_within(self._readers, end - loop.time()):
            raise StoreUnavailable("Too many locations are being added; try again later.")
        try:
            await self._add(ctx, image_id, url, wanted, end)
        finally:
            self._readers.release()

    async def _add(
        self, ctx: RequestContext, image_id: str, url: object, wanted: dict[str, str], end: float
    ) -> None:
        """add_location's work once it has its turn, before the loop time `end`."""
        loop = asyncio.get_running_loop()
        try:
            location = await within(end - loop.time(), "reaching", self.resolve(ctx, url))
        except DeadlineExceeded:
            raise self._too_slow(url, "reaching") from None
        async with self.db.write() as session:
            repo = ImageRepository(session)
            await self.check_unshared(repo, image_id, location.url)
            # Claimed while the data is read, so an upload or a second location cannot race.
            if not await repo.claim_status(image_id, ImageStatus.QUEUED, ImageStatus.IMPORTING):
                raise Conflict("It's not allowed to add locations if image status is not queued.")
        try:
            algo = wanted.get("os_hash_algo", self.settings.hashing_algorithm)
            try:
                meter = await within(end - loop.time(), "reading", self._hash(location, algo))
            except DeadlineExceeded:
                raise self._too_slow(location.url, "reading") from None
            _verify(meter, wanted)
            async with self.db.write() as session:
                repo = ImageRepository(session)
                activated = await repo.claim_status(
                    image_id,
                    ImageStatus.IMPORTING,
                    ImageStatus.ACTIVE,
                    size=meter.size,
                    checksum=meter.checksum,
                    os_hash_algo=meter.hash_algo,
                    os_hash_value=meter.hash_value,
                )
                if activated:
                    await repo.add_location(image_id, location.url, location.metadata)
        except BaseException:
            await asyncio.shield(self._release(image_id))
            raise

    async def _release(self, image_id: str) -> None:
        async with self.db.write() as session:
            await ImageRepository(session).claim_status(
                image_id, ImageStatus.IMPORTING, ImageStatus.QUEUED
            )

    def _too_slow(self, url: object, doing: str) -> InvalidInput:
        seconds = self.settings.location_add_timeout
        return InvalidInput(f"Invalid location: {url}: {doing} its data took over {seconds} s")

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
        resolved = [
            await self.resolve(ctx, value.url, value.metadata, patching=True)
            for value in planned.added
        ]
        validation = validation_values(
            planned.validation_data or None, self.settings.hashing_algorithm
        )
        return PreparedPatch(
            [loc.value for loc in current], planned, resolved, validation, image.status
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
        for location in prepared.resolved:
            await self.check_unshared(repo, image.id, location.url)
        removed: list[ImageLocation] = []
        for existing in current:
            if existing.value in prepared.plan.removed:
                await repo.retire_location(existing)
                removed.append(existing)
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
            await repo.retire_location(target)
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


def _activate(image: Image, size: int, validation: Mapping[str, str]) -> None:
    """A queued image given data by location: active, sized, and hashed as the caller says."""
    image.status = ImageStatus.ACTIVE
    image.size = size
    image.checksum = validation.get("checksum")
    image.os_hash_algo = validation.get("os_hash_algo")
    image.os_hash_value = validation.get("os_hash_value")


def _require_status(image: Image, allowed: tuple[ImageStatus, ...], action: str) -> None:
    if image.status not in allowed:
        raise Conflict(f"It's not allowed to {action} if image status is {image.status}.")


def _verify(meter: Meter, wanted: Mapping[str, str]) -> None:
    actual = {
        "os_hash_algo": meter.hash_algo,
        "os_hash_value": meter.hash_value,
        "checksum": meter.checksum,
    }
    for key, value in wanted.items():
        if actual[key] != value.lower():
            raise InvalidInput(f"{key}: ({value}) not matched with actual {key}: ({actual[key]})")
