"""Upload and download of image data, streamed between the client and a store.

No transaction is held while data moves: the image is claimed (queued -> saving) in one short
transaction, the data streams, and a second short transaction activates it. Any failure on the
way removes the partial data and returns the image to queued.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass

from glimpse import unified_limits
from glimpse.config import Settings
from glimpse.context import RequestContext
from glimpse.db.engine import Database
from glimpse.db.repositories.images import ImageRepository
from glimpse.db.repositories.reservations import ReservationRepository
from glimpse.db.tables import Image, ImageLocation
from glimpse.domain.errors import (
    Gone,
    ImageNotFound,
    InvalidInput,
    RangeNotSatisfiable,
    StoreUnavailable,
)
from glimpse.domain.images import ImageStatus, check_downloadable, transition
from glimpse.domain.redaction import redact_text, redact_url
from glimpse.formats import StreamInspector, inspected_container
from glimpse.limits import StorageQuota, capped, check_size_cap
from glimpse.services import signatures
from glimpse.services.access import authorize, authorized_image
from glimpse.services.image_cache import ImageCache, StoreOpener
from glimpse.services.upload_lease import UploadLease, lease_until
from glimpse.stores.base import (
    ByteRange,
    ObjectNotFound,
    ResolvedRange,
    StoreError,
    resolve,
)
from glimpse.stores.checked import CheckedStore
from glimpse.stores.metering import Meter
from glimpse.stores.registry import StoreRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Claim:
    """An upload's image once claimed: the upload's id (its lease), its owner, the bytes it may
    hold under the owner's quota so far (reserved with the claim), and the formats its data must
    be in."""

    upload_id: str
    owner: str | None
    granted: int
    disk_format: str | None
    container_format: str | None
    properties: dict[str, str]
    quota: StorageQuota


@dataclass(frozen=True, slots=True)
class Download:
    """What the API needs to answer a download: the stream and its framing."""

    chunks: AsyncIterator[bytes]
    image_size: int
    checksum: str | None
    span: ResolvedRange | None


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


class ImageDataService:
    def __init__(
        self,
        settings: Settings,
        database: Database,
        stores: StoreRegistry,
        cache: ImageCache | None = None,
    ) -> None:
        self.settings = settings
        self.db = database
        self.stores = stores
        self.cache = cache
        self.quota = StorageQuota(settings, database)

    def _store(self, store_id: str | None) -> CheckedStore:
        if store_id is None:
            return self.stores.default
        store = self.stores.get(store_id)
        if store is None:
            raise InvalidInput(f"Store for identifier {store_id} not found")
        return store

    async def _claim(self, ctx: RequestContext, image_id: str, body_size: int | None) -> Claim:
        """queued -> saving, under a new upload id and its lease (see upload_lease), reserving
        storage under the owner's quota with the claim: the whole body when its size is known,
        else room for a first stretch of it. With Keystone's limits, the project's
        image_size_total and image_count_uploading are checked in the same transaction, and
        image_size_total is the quota the data streams under."""
        limits = await unified_limits.read_limits(self.settings, ctx.project_id)
        quota = unified_limits.size_quota(self.quota, ctx.project_id, limits)
        async with self.db.write() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "upload_image", lock=True)
            # Only a queued image takes data: a second upload meets `saving` here (409).
            transition(ImageStatus(image.status), ImageStatus.SAVING)
            missing = [
                name for name in ("disk_format", "container_format") if getattr(image, name) is None
            ]
            if missing:
                names = ", ".join(missing)
                noun = "Properties" if len(missing) > 1 else "Property"
                raise InvalidInput(f"{noun} {names} must be set prior to saving data.")
            upload_id = uuid.uuid4().hex
            await repo.claim_upload(
                image_id, upload_id, lease_until(self.settings.scrubber.lease_time)
            )
            # As Glance: the size announced, then the uploads including this one.
            deltas = {
                unified_limits.IMAGE_SIZE_TOTAL: unified_limits.mib_of(body_size),
                unified_limits.IMAGE_COUNT_UPLOADING: 0,
            }
            await unified_limits.check_in(session, ctx.project_id, limits, deltas)
            granted = await quota.reserve_claim(session, image_id, image.owner, body_size)
            properties = await repo.properties(image_id)
            return Claim(
                upload_id,
                image.owner,
                granted,
                image.disk_format,
                image.container_format,
                properties,
                quota,
            )

    async def _release(self, image_id: str, upload_id: str) -> None:
        """saving -> queued after a failed upload (a no-op if the image was deleted or taken
        back meanwhile), and its reservation goes. If this fails too, the lease runs out and
        housekeeping does it."""
        async with self.db.write() as session:
            await ImageRepository(session).release_upload(image_id, upload_id)
            await ReservationRepository(session).release(image_id)

    async def _discard(
        self, image_id: str, upload_id: str, store: CheckedStore, location: str
    ) -> None:
        await store.delete_if_present(location)
        await self._release(image_id, upload_id)

    async def upload(
        self,
        ctx: RequestContext,
        image_id: str,
        chunks: AsyncIterable[bytes],
        *,
        store_id: str | None = None,
        expected_size: int | None = None,
        body_size: int | None = None,
    ) -> None:
        """Stream `chunks` into a store as the image's data. `expected_size` is the size the
        client announced (x-openstack-image-size); the upload fails if the data differs.
        `body_size` is the request's Content-Length (None when chunked)."""
        store = self._store(store_id)
        check_size_cap(self.settings.image_size_cap, expected_size)
        announced = expected_size if expected_size is not None else body_size
        claim = await self._claim(ctx, image_id, announced)
        verification = await self._verification(ctx, image_id, claim)
        try:
            await self._receive(
                image_id,
                chunks,
                claim,
                store=store,
                verification=verification,
                expected_size=expected_size,
            )
        finally:
            if verification is not None:
                verification.close()

    async def _receive(
        self,
        image_id: str,
        chunks: AsyncIterable[bytes],
        claim: Claim,
        *,
        store: CheckedStore,
        verification: signatures.Verification | None,
        expected_size: int | None,
    ) -> None:
        """Stream the claimed image's data into `store` and activate it (see upload)."""
        cap = self.settings.image_size_cap
        algo = self.settings.hashing_algorithm
        meter = Meter(algo) if verification is None else verification.meter(algo)
        data = claim.quota.guard(
            image_id,
            claim.owner,
            capped(chunks, meter, cap, expected_size=expected_size),
            granted=claim.granted,
        )
        if verification is not None:
            data = verification.guard(data)
        inspector = StreamInspector() if inspected_container(claim.container_format) else None
        if inspector is not None:
            data = inspector.watch(data)
        lease = UploadLease(self.db, image_id, claim.upload_id, self.settings.scrubber.lease_time)
        try:
            async with lease:
                stored = await store.put(image_id, data)
        except BaseException as exc:
            # Shielded so a cancelled request still hands the image back. A store's failure
            # is answered as glimpse.stores.checked.failure_for says.
            await asyncio.shield(self._release(image_id, claim.upload_id))
            await signatures.refuse_unverified(verification, image_id, exc)
            raise
        try:
            virtual_size = self._checked_virtual_size(inspector, claim)
            if verification is not None:
                await signatures.verify(verification, image_id)
            async with self.db.write() as session:
                repo = ImageRepository(session)
                activated = await repo.activate(
                    image_id,
                    ImageStatus.SAVING,
                    {**meter.image_data(), "virtual_size": virtual_size},
                    upload_id=claim.upload_id,
                )
                # The size recorded now counts against the quota in the reservation's stead.
                await ReservationRepository(session).release(image_id)
                if activated:
                    await repo.add_location(image_id, stored.location, {"store": store.name})
        except BaseException as exc:
            # The image did not become active (refused data included): its data must not
            # outlive the failure.
            await asyncio.shield(self._discard(image_id, claim.upload_id, store, stored.location))
            await signatures.refuse_unverified(verification, image_id, exc)
            raise
        if not activated:
            await store.delete_if_present(stored.location)
            raise Gone(
                f"Image {image_id} could not be found after upload. "
                "The image may have been deleted during the upload."
            )

    async def _verification(
        self, ctx: RequestContext, image_id: str, claim: Claim
    ) -> signatures.Verification | None:
        """The signature check the claimed image needs, begun (None: unsigned); the claim is
        handed back when its properties are refused."""
        try:
            return signatures.verification_for(self.settings, ctx, claim.properties)
        except BaseException as exc:
            await asyncio.shield(self._release(image_id, claim.upload_id))
            if isinstance(exc, signatures.SignatureFailed):
                raise signatures.for_image(image_id, exc) from None
            raise

    def _checked_virtual_size(self, inspector: StreamInspector | None, claim: Claim) -> int | None:
        """Refuse unsafe or (per [image_format]) mismatched data; the virtual size to record."""
        if inspector is None:
            return None
        options = self.settings.image_format
        return inspector.result().check(
            claim.disk_format,
            options.require_image_format_match,
            options.gpt_safety_checks_nonfatal,
        )

    def _check_preferred(self, prefer: list[str]) -> None:
        if not self.settings.multistore:
            raise InvalidInput(
                "Store selection for download is not available when multiple backends "
                "are not enabled."
            )
        for store_id in prefer:
            if self.stores.get(store_id) is None:
                raise InvalidInput(f"Store '{store_id}' is not configured.")

    async def download(
        self,
        ctx: RequestContext,
        image_id: str,
        byte_range: ByteRange | None,
        prefer: list[str] | None = None,
    ) -> Download | None:
        """The image's data (or a span of it); None when the image has no data yet. Locations
        are read in read order (StoreRegistry.by_weight: `prefer` stores first, then the
        location strategy, then store weight), falling back to the next location when a
        store fails; each failed location is logged once."""
        async with self.db.read() as session:
            repo = ImageRepository(session)
            image = await authorized_image(repo, ctx, image_id, "download_image")
            check_downloadable(image.status, ctx.is_admin)
            if prefer:
                await authorize(repo, ctx, image, "download_from_store")
            record = await repo.record(image)
        if prefer:
            self._check_preferred(prefer)
        if not record.locations or image.size is None:
            return None
        span = None
        if byte_range is not None:
            span = resolve(byte_range, image.size)
            if span is None:
                raise RangeNotSatisfiable(image.size)
        locations = record.locations

        async def from_store(span: ResolvedRange | None = None) -> AsyncIterator[bytes]:
            return await self._read_store(image_id, locations, span, prefer or ())

        # As Glance's cache filter: `prefer` names stores, so it is read from them.
        if self.cache is not None and self.settings.cache_serving and not prefer:
            cached = await self.cache.serve(image, span, from_store)
            if cached is not None:
                return Download(cached, image.size, image.checksum, span)
        return Download(await from_store(span), image.size, image.checksum, span)

    async def _read_store(
        self,
        image_id: str,
        locations: list[ImageLocation],
        span: ResolvedRange | None,
        prefer: Sequence[str],
    ) -> AsyncIterator[bytes]:
        """The first location that opens, in store-weight order (`prefer` first)."""
        errors = []
        for location in self.stores.by_weight(locations, prefer):
            store = self.stores.get(location.store_id or self.stores.default_id)
            if store is None:
                log.warning(
                    "image %s: location %s is in a disabled store", image_id, location.value
                )
                continue
            chunks = store.get(location.value, span)
            try:
                # Open the object before any header is sent, so a missing file is an error
                # response rather than a truncated body.
                first = await anext(chunks, b"")
            except (ObjectNotFound, StoreError, OSError) as exc:
                errors.append(exc)
                log.warning(
                    "image %s: location %s unreadable: %s",
                    image_id,
                    redact_url(location.value),
                    redact_text(str(exc)),
                )
                continue
            return _prepend(first, chunks)
        if errors:
            raise StoreUnavailable(f"Image {image_id} data could not be read from any store")
        raise ImageNotFound(image_id)

    async def load_for_prefetch(self, image_id: str) -> tuple[Image, StoreOpener] | None:
        """For the prefetcher (no caller to authorize): the live image and a way to its data,
        or None if it has none."""
        async with self.db.read() as session:
            repo = ImageRepository(session)
            image = await repo.get(image_id)
            if image is None or image.size is None:
                return None
            locations = (await repo.record(image)).locations
        if not locations:
            return None

        async def opener() -> AsyncIterator[bytes]:
            return await self._read_store(image_id, locations, None, ())

        return image, opener
