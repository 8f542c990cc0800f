"""Image record use cases: create, show, list, update, tag, delete."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from glimpse import unified_limits
from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.cache import CacheRepository
from glimpse.db.repositories.image_inserts import insert_image, new_image
from glimpse.db.repositories.image_lookup import ImageLookup
from glimpse.db.repositories.images import ImageRecord, ImageRepository
from glimpse.db.repositories.members import MemberRepository
from glimpse.db.tables import Image, ImageLocation, utcnow
from glimpse.domain import attributes, patch, policy
from glimpse.domain.errors import (
    Conflict,
    Forbidden,
    ImageNotFound,
    InvalidInput,
    LimitExceeded,
    NotFound,
)
from glimpse.domain.images import MUTABLE_ATTRIBUTES, ImageStatus, Visibility, deactivation
from glimpse.domain.listing import ListQuery
from glimpse.services.access import authorized_image, enforce_on
from glimpse.services.image_cache import ImageCache
from glimpse.services.key_cleanup import KeyCleanupService
from glimpse.services.locations import LocationService
from glimpse.stores.base import StoreError
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)


# Formats describe the data, so they may change only before there is any.
_FORMAT_EDITABLE = (ImageStatus.QUEUED, ImageStatus.IMPORTING)


@dataclass(frozen=True, slots=True)
class ImagePage:
    records: list[ImageRecord]
    next_marker: str | None


def _quota_check(kind: str, attempted: int, maximum: int) -> None:
    # A negative quota means unlimited, as in Glance.
    if 0 <= maximum < attempted:
        raise LimitExceeded(
            f"The limit has been exceeded on the number of allowed image {kind}. "
            f"Attempted: {attempted}, Maximum: {maximum}"
        )


def _check_quotas(settings: Settings, properties: dict[str, str], tags: list[str]) -> None:
    _quota_check("properties", len(properties), settings.image_property_quota)
    _quota_check("tags", len(tags), settings.image_tag_quota)


def _check_visibility(ctx: RequestContext, target: Image | policy.Target, visibility: str) -> None:
    if visibility == Visibility.PUBLIC:
        policy.enforce(ctx, "publicize_image", target)
    elif visibility == Visibility.COMMUNITY:
        policy.enforce(ctx, "communitize_image", target)


@dataclass(frozen=True, slots=True)
class NewImage:
    """A queued image the caller may create, checked but not yet written."""

    image: Image
    properties: dict[str, str]
    tags: list[str]


def plan_new_image(settings: Settings, ctx: RequestContext, body: dict[str, Any]) -> NewImage:
    """Validate a create request (attributes, policy, quotas); raises what POST /v2/images
    answers for a bad one."""
    core: dict[str, Any] = {"visibility": Visibility.SHARED.value, "owner": ctx.project_id}
    properties: dict[str, str] = {}
    tags: list[str] = []
    image_id = str(uuid.uuid4())
    for name, value in body.items():
        if name == "id":
            image_id = attributes.validate_image_id(value)
        elif name == "tags":
            tags = attributes.validate_tags(value)
        elif name == "locations":
            raise Forbidden("It's not allowed to add locations if locations are invisible.")
        elif name in MUTABLE_ATTRIBUTES:
            core[name] = attributes.validate_core(name, value)
        else:
            properties[name] = attributes.validate_property(name, value)
    target = policy.proposed(core["owner"], core["visibility"])
    if core["owner"] is None:
        # A caller without a project (a system- or domain-scoped token, a proxy that sends no
        # X-Project-Id) would make an image nobody owns: refused as Glance's policy refuses it.
        raise Forbidden("You are not authorized to complete add_image action.")
    # policy.enforce for a proposed image, without evaluating the rule a second time.
    if not policy.allowed(ctx, "add_image", target):
        if core["owner"] != ctx.project_id:
            raise Forbidden(f"You are not permitted to create images owned by '{core['owner']}'")
        raise Forbidden("You are not authorized to complete add_image action.")
    policy.legacy_check(ctx, "add_image", target)
    _check_visibility(ctx, target, core["visibility"])
    _check_quotas(settings, properties, tags)
    now = utcnow()
    image = new_image(
        id=image_id, status=ImageStatus.QUEUED, created_at=now, updated_at=now, **core
    )
    return NewImage(image, properties, tags)


async def add_new_image(repo: ImageRepository, new: NewImage) -> None:
    if await repo.exists_any(new.image.id):
        raise Conflict(f"Image with identifier {new.image.id} already exists!")
    await repo.add(new.image, new.properties, new.tags)


class ImageService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: StoreRegistry,
        locations: LocationService | None = None,
        cache: ImageCache | None = None,
    ) -> None:
        self.cache = cache
        self.settings = settings
        self.db = database
        self.stores = stores
        self.locations = locations or LocationService(settings, database, stores)
        self.deletion = self.locations.deletion
        self.key_cleanup = KeyCleanupService(settings, database)

    async def create(self, ctx: RequestContext, body: dict[str, Any]) -> ImageRecord:
        new = plan_new_image(self.settings, ctx, body)
        limits = await unified_limits.read_limits(self.settings, ctx.project_id)
        if limits is None:
            async with self.db.core_write() as connection:
                inserted = await insert_image(connection, new.image, new.properties, new.tags)
        else:
            async with self.db.write_connection() as connection:
                # A session on the connection joins its transaction: the insert below is
                # checked under the owner's lock, as every write that counts against a limit.
                async with AsyncSession(bind=connection) as session:
                    await unified_limits.check_in(
                        session, ctx.project_id, limits, {unified_limits.IMAGE_COUNT_TOTAL: 1}
                    )
                inserted = await insert_image(connection, new.image, new.properties, new.tags)
        if not inserted:
            raise Conflict(f"Image with identifier {new.image.id} already exists!")
        # Just written, so known without reading back: no location yet, and properties and
        # tags in the order they were inserted (the order records() reads them in).
        return ImageRecord(new.image, dict(new.properties), list(new.tags), [])

    async def get(self, ctx: RequestContext, image_id: str) -> ImageRecord:
        async with self.db.connect() as connection:
            lookup = ImageLookup(connection)
            record = await lookup.record(image_id)
            if record is None:
                raise ImageNotFound(image_id)
            status = await lookup.member_status(record.image, ctx.project_id)
        enforce_on(ctx, record.image, image_id, "get_image", status=status)
        return (await self._presented(ctx, [record]))[0]

    async def _presented(
        self, ctx: RequestContext, records: list[ImageRecord]
    ) -> list[ImageRecord]:
        """Records as the API shows them to `ctx`: locations in read order (by_weight), visible
        only to a caller who passes `get_image_location`, and pre-Train location metadata
        rewritten in the database on first sight (Train's lazy upgrade)."""
        legacy = [
            r.image.id for r in records if any(loc.has_legacy_metadata for loc in r.locations)
        ]
        if legacy:
            async with self.db.write() as session:
                rewritten = await ImageRepository(session).rewrite_legacy_locations(legacy)
            log.info("rewrote legacy location metadata of %d locations", rewritten)
        visible = await self._locations_visible(ctx, records)
        # Built anew rather than by dataclasses.replace, which costs a show more than this.
        return [
            ImageRecord(
                record.image,
                record.properties,
                record.tags,
                self.stores.by_weight(record.locations),
                locations_visible=record.image.id in visible,
            )
            for record in records
        ]

    async def _locations_visible(self, ctx: RequestContext, records: list[ImageRecord]) -> set[str]:
        """The ids of the images whose locations `ctx` may see (get_image_location); none when
        no view shows locations."""
        settings = self.settings
        if not (settings.show_multiple_locations or settings.show_image_direct_url):
            return set()
        # Without locations there is nothing to show or hide (the view is the same either way).
        records = [record for record in records if record.locations]
        if not records:
            return set()
        async with self.db.lookup() as session:
            statuses = await MemberRepository(session).statuses_of(
                [record.image.id for record in records], ctx.project_id
            )
        return {
            record.image.id
            for record in records
            if policy.allowed(
                ctx,
                "get_image_location",
                record.image,
                member_status=statuses.get(record.image.id),
            )
        }

    async def list_images(self, ctx: RequestContext, query: ListQuery) -> ImagePage:
        policy.enforce(ctx, "get_images")
        async with self.db.read_connection() as connection:
            lookup = ImageLookup(connection)
            marker = None
            if query.marker is not None:
                marker = await lookup.image(query.marker)
                if marker is None or not policy.allowed(
                    ctx,
                    "get_image",
                    marker,
                    member_status=await lookup.member_status(marker, ctx.project_id),
                ):
                    raise InvalidInput(f"Invalid marker. Image {query.marker} could not be found.")
            listed = await lookup.page(ctx, query, marker)
            # As Glance, each row must also pass get_image (a policy file may narrow it); the
            # next marker still follows the database page.
            targets = [policy.target_of(item.image, item.member_status) for item in listed]
            decisions = policy.allowed_each(ctx, "get_image", targets)
            shown = [item for item, ok in zip(listed, decisions, strict=True) if ok]
            records = await lookup.records(shown)
        full_page = query.limit > 0 and len(listed) == query.limit
        next_marker = listed[-1].image.id if full_page else None
        return ImagePage(await self._presented(ctx, records), next_marker)

    async def update(
        self, ctx: RequestContext, image_id: str, operations: list[patch.Operation]
    ) -> ImageRecord:
        location_ops = [op for op in operations if op.name == patch.LOCATIONS]
        prepared = None
        if location_ops:
            prepared = await self.locations.prepare_patch(ctx, image_id, location_ops)
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "modify_image", lock=True)
            record = await repo.record(image)
            state = patch.ImageState(
                core={name: getattr(image, name) for name in MUTABLE_ATTRIBUTES},
                properties=dict(record.properties),
                tags=list(record.tags),
            )
            patch.apply(state, operations)
            self._check_patched(ctx, image, state)
            for name in state.changed_core:
                setattr(image, name, state.core[name])
            if state.properties != record.properties:
                await repo.replace_properties(image.id, state.properties)
            if state.tags != record.tags:
                await repo.replace_tags(image.id, state.tags)
            removed: list[ImageLocation] = []
            if prepared is not None:
                removed = await self.locations.apply_patch(repo, image, prepared)
            await repo.touch(image)
            record = await repo.record(image)
        await self.deletion.remove_all(removed)
        return (await self._presented(ctx, [record]))[0]

    def _check_patched(self, ctx: RequestContext, image: Image, state: patch.ImageState) -> None:
        for name in ("disk_format", "container_format"):
            if name in state.changed_core and image.status not in _FORMAT_EDITABLE:
                raise Forbidden(f"Attribute {name} can be only replaced for a queued image.")
        if "visibility" in state.changed_core:
            _check_visibility(ctx, image, state.core["visibility"])
        if "owner" in state.changed_core and not ctx.is_admin:
            raise Forbidden("Owner can't be updated by non admin.")
        _check_quotas(self.settings, state.properties, state.tags)

    async def add_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        attributes.validate_tag(tag)
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "modify_image", lock=True)
            record = await repo.record(image)
            if tag in record.tags:
                return
            tags = [*record.tags, tag]
            _quota_check("tags", len(tags), self.settings.image_tag_quota)
            await repo.replace_tags(image_id, tags)
            await repo.touch(image)

    async def delete_tag(self, ctx: RequestContext, image_id: str, tag: str) -> None:
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "modify_image", lock=True)
            record = await repo.record(image)
            if tag not in record.tags:
                raise NotFound(f"Tag {tag} not found.")
            await repo.replace_tags(image_id, [t for t in record.tags if t != tag])
            await repo.touch(image)

    async def change_activation(self, ctx: RequestContext, image_id: str, action: str) -> None:
        """`deactivate` or `reactivate` (the policy names of the two actions)."""
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, action, lock=True)
            target = deactivation(image.status, action)
            if target is not None and not await repo.claim_status(
                image_id, ImageStatus(image.status), target
            ):
                # Changed under us (no row locks on SQLite): answer as for the new status.
                raise Conflict(f"Image {image_id} changed status while being {action}d")
            if target == ImageStatus.DEACTIVATED:
                # No node serves a deactivated image from its cache (nor prefetches it).
                await CacheRepository(session).evict(image_id)
        if target == ImageStatus.DEACTIVATED:
            await self._evict_files(image_id)

    async def _evict_files(self, image_id: str) -> None:
        """This node's cache file goes now, other nodes' on its notice (or at their next read
        or pass)."""
        if self.cache is not None:
            await self.cache.remove_files([image_id])
            await self.cache.notices.announce(image_id)

    async def _discard_staged(self, image_id: str) -> None:
        """The staged data of a deleted image, as Glance removes it; what the store refuses
        now, the staging cleanup removes later."""
        staging = self.stores.staging
        try:
            await staging.delete_if_present(staging.location_for(image_id))
        except StoreError as exc:
            log.warning("image %s: staged data not removed yet: %s", image_id, exc)

    async def delete(self, ctx: RequestContext, image_id: str) -> None:
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(
                repo,
                ctx,
                image_id,
                "delete_image",
                lock=True,
                missing=NotFound(f"Failed to find image {image_id} to delete"),
            )
            if image.protected:
                raise Forbidden(f"Image {image_id} is protected and cannot be deleted.")
            delayed = self.settings.delayed_delete
            staged = image.status in (ImageStatus.UPLOADING, ImageStatus.IMPORTING)
            locations = await repo.mark_deleted(image, delayed=delayed, request_id=ctx.request_id)
            if not delayed:  # a delayed delete keeps its members for a restore
                await MemberRepository(session).remove_all(image_id)
            # In this transaction, so a committed delete never loses its key cleanup.
            cleanup_id = await self.key_cleanup.record(session, ctx, image)
            await CacheRepository(session).evict(image_id)
        await self._evict_files(image_id)
        if staged:
            await self._discard_staged(image_id)
        if not delayed:
            # Data goes only after the delete is committed, outside any transaction; what a
            # store refuses now stays recorded for the scrubber.
            await self.deletion.remove_all(locations)
        if cleanup_id is not None:
            await self.key_cleanup.after_delete(ctx, cleanup_id, gone=not delayed)
