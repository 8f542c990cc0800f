"""This node's image cache: hits, single-flight fills, prefetching, pruning and cleaning.

State is in the database (cache tables, one row per image and node), files are on each node.
A node serves a file only while its own row says it holds the image with the image's checksum.
The cache API acts on one node's rows and files, as Glance's does; deleting or deactivating an
image deletes its rows of every node, which takes effect everywhere at once: a node that meets a
file without its row deletes it on that read, and on the notice the evicting node sends through
the broker (cache/notices.py), or else at its maintenance pass, removes the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from glimpse.cache.files import CacheDir, Removed, open_for_read, read_file
from glimpse.cache.fill import CorruptData, Expected, Fill, FillFailed, Flights
from glimpse.cache.notices import CacheNotices
from glimpse.config import Settings
from glimpse.db.engine import Database
from glimpse.db.repositories.cache import CachedEntry, CacheRepository, now
from glimpse.db.tables import Image
from glimpse.domain.errors import StoreUnavailable
from glimpse.domain.images import ImageStatus
from glimpse.domain.ranges import ResolvedRange

log = logging.getLogger(__name__)

# A row younger than this whose file is missing may be a fill between its commit and its
# rename: the maintenance pass leaves it alone.
_SETTLING = timedelta(seconds=60)

StoreOpener = Callable[[], Awaitable[AsyncIterator[bytes]]]
# The prefetcher's way to the data: the image and an opener, or None if it has none to cache.
Loader = Callable[[str], Awaitable[tuple[Image, StoreOpener] | None]]


@dataclass(frozen=True, slots=True)
class Pruned:
    files: int
    size: int


class ImageCache:
    def __init__(self, settings: Settings, database: Database) -> None:
        if settings.image_cache_dir is None:
            msg = "the image cache needs image_cache_dir"
            raise ValueError(msg)
        self.settings = settings
        self.db = database
        self.dir = CacheDir(settings.image_cache_dir)
        self.url = settings.node_url(settings.bind_port)
        self.flights = Flights()
        self.notices = CacheNotices(settings, self.url)
        self._node_id: int | None = None
        self._node_lock = asyncio.Lock()
        self._opening: dict[str, asyncio.Future[Fill]] = {}

    async def node_id(self) -> int:
        """This node's row id, registered (and the directory made) the first time."""
        async with self._node_lock:
            if self._node_id is None:
                await asyncio.to_thread(self.dir.prepare)
                async with self.db.write() as session:
                    self._node_id = await CacheRepository(session).register_node(self.url)
            return self._node_id

    def cacheable(self, image: Image) -> bool:
        """Only active images with data, a recorded digest to verify, and room in the cache."""
        return (
            image.status == ImageStatus.ACTIVE
            and bool(image.size)
            and (image.size or 0) <= self.settings.image_cache_max_size
            and bool(image.checksum or image.os_hash_value)
        )

    async def serve(
        self, image: Image, span: ResolvedRange | None, open_store: StoreOpener
    ) -> AsyncIterator[bytes] | None:
        """The image's data (or `span` of it) from this node's cache, filling it on a miss;
        None when the caller must read the store itself (not cacheable, or a Range miss)."""
        if not self.cacheable(image):
            return None
        node = await self.node_id()
        while True:
            fill = self._running(image.id) if span is None else None
            if fill is not None:
                break
            completed = self.flights.completed(image.id)
            hit = await self._hit(node, image, span)
            if hit is not None:
                return hit
            # A fill that ended while we looked (its row not yet seen): look again.
            if self.flights.completed(image.id) == completed:
                break
        if span is not None:
            await self._count(node, misses=1)
            return None
        # No await between the last look and joining or starting the fill (but while a fill's
        # store is being opened): one store read per image.
        fill = fill or await self._fill(node, image, open_store)
        await self._count(node, misses=1)
        try:
            return fill.follow()  # a fill that ended meanwhile is read from its file
        except FileNotFoundError:
            return None  # already evicted: the store serves
        except FillFailed as exc:
            if isinstance(exc.__cause__, CorruptData):
                msg = f"Image {image.id} data in the store does not match its checksum"
                raise StoreUnavailable(msg) from exc
            return None  # the store failed that fill; it may serve this request

    async def _hit(
        self, node: int, image: Image, span: ResolvedRange | None
    ) -> AsyncIterator[bytes] | None:
        async with self.db.read() as session:
            entry = await CacheRepository(session).entry(node, image.id)
        fd = open_for_read(self.dir.path(image.id))
        if entry is None:
            if fd is not None:  # evicted elsewhere (or half-recorded): not ours to serve
                os.close(fd)
                await asyncio.to_thread(self.dir.remove, image.id)
            return None
        if fd is None:
            if self.flights.get(image.id) is None:  # the file went: forget it here
                await self._forget_local(node, image.id, remove=False)
            return None
        size = os.fstat(fd).st_size
        if not _matches(entry, image, size):
            os.close(fd)
            log.warning("image %s: cache file does not match the image; discarded", image.id)
            await self._forget_local(node, image.id)
            return None
        start, stop = (span.start, span.stop) if span is not None else (0, size)
        try:
            async with self.db.write() as session:
                repo = CacheRepository(session)
                await repo.touch(node, image.id)
                await repo.count(node, hits=1, bytes_served=stop - start)
        except BaseException:
            os.close(fd)
            raise
        return read_file(fd, start, stop)

    def _running(self, image_id: str) -> Fill | None:
        return self.flights.get(image_id)

    async def _fill(self, node: int, image: Image, open_store: StoreOpener) -> Fill:
        """The image's running fill, or a new one: one store read however many ask at once
        (those arriving while the store is being opened wait for that opening)."""
        fill = self.flights.get(image.id)
        if fill is not None:
            return fill
        opening = self._opening.get(image.id)
        if opening is not None:
            return await asyncio.shield(opening)
        opening = asyncio.get_running_loop().create_future()
        self._opening[image.id] = opening
        try:
            # Opened here, so a store that cannot serve the image is this request's error.
            fill = self._start(node, image, await open_store())
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                opening.cancel()
            else:
                opening.set_exception(exc)
                opening.exception()  # retrieved: no "never retrieved" warning without waiters
            raise
        finally:
            del self._opening[image.id]
        opening.set_result(fill)
        return fill

    def _start(self, node: int, image: Image, source: AsyncIterator[bytes]) -> Fill:
        expected = Expected(
            size=image.size or 0,
            checksum=image.checksum,
            hash_algo=image.os_hash_algo,
            hash_value=image.os_hash_value,
        )
        fill = Fill(image.id, self.dir.partial(image.id), self.dir.path(image.id), expected)

        async def commit(partial: Path) -> bool:
            async with self.db.write() as session:
                recorded = await CacheRepository(session).record_fill(
                    node, image.id, expected.size, image.checksum
                )
            if not recorded:
                return False
            try:
                await asyncio.to_thread(os.replace, partial, self.dir.path(image.id))
            except OSError:
                await self._forget_local(node, image.id, remove=False)
                raise
            return True

        self.flights.start(fill, source, commit)
        return fill

    async def _count(self, node: int, **counters: int) -> None:
        async with self.db.write() as session:
            await CacheRepository(session).count(node, **counters)

    async def _forget_local(self, node: int, image_id: str, *, remove: bool = True) -> None:
        async with self.db.write() as session:
            await CacheRepository(session).forget(image_id, node)
        if remove:
            await asyncio.to_thread(self.dir.remove, image_id)

    # -- what the cache API and image deletes ask of this node -------------------------------

    async def remove_files(self, image_ids: list[str]) -> None:
        """Rows already gone: this node's files go now (after an image delete, other nodes' on
        the notice the caller sends, else at their next read or maintenance pass)."""
        for image_id in image_ids:
            with contextlib.suppress(ValueError):
                await asyncio.to_thread(self.dir.remove, image_id)

    async def prefetch(self, image_id: str, load: Loader) -> bool:
        """Fill the image into this node's cache (if it is not there) and take it off this
        node's queue, whatever the outcome, so an image that cannot be cached is not fetched
        again and again; True if it is cached now."""
        node = await self.node_id()
        loaded = await load(image_id)
        cached = False
        if loaded is not None and self.cacheable(loaded[0]):
            image, opener = loaded
            async with self.db.read() as session:
                entry = await CacheRepository(session).entry(node, image_id)
            if entry is not None and self.dir.size_of(image_id) == image.size:
                cached = True
            else:
                try:
                    fill = await self._fill(node, image, opener)
                except Exception:
                    log.exception("image %s: prefetch could not read the store", image_id)
                else:
                    await fill.wait()
                    cached = fill.verified
        async with self.db.write() as session:
            await CacheRepository(session).dequeue(image_id, node)
        return cached

    async def prefetch_queued(self, load: Loader, stopping: asyncio.Event | None = None) -> int:
        """Fill every image queued for this node (until `stopping` is set); how many are
        cached now."""
        node = await self.node_id()
        async with self.db.read() as session:
            queued = await CacheRepository(session).queued(node)
        done = 0
        for image_id in queued:
            if stopping is not None and stopping.is_set():
                break
            done += await self.prefetch(image_id, load)
        return done

    async def prune(self) -> Pruned:
        """Remove least recently used images until this node holds image_cache_max_size at
        most."""
        node = await self.node_id()
        async with self.db.read() as session:
            entries = await CacheRepository(session).entries(node)
        total = sum(entry.size for entry in entries)
        files = size = 0
        for entry in entries:
            if total <= self.settings.image_cache_max_size:
                break
            await self._forget_local(node, entry.image_id)
            total -= entry.size
            files += 1
            size += entry.size
        return Pruned(files, size)

    async def clean(self) -> Removed:
        """Remove stalled fills (unwritten for image_cache_stall_time), invalid files, files
        whose rows are gone and rows whose files are gone."""
        node = await self.node_id()
        removed = await asyncio.to_thread(
            self.dir.remove_stalled, self.settings.image_cache_stall_time, self.flights.partials()
        )
        async with self.db.read() as session:
            entries = {e.image_id: e for e in await CacheRepository(session).entries(node)}
        files = await asyncio.to_thread(self.dir.cached_ids)
        orphans = [image_id for image_id in files if image_id not in entries]
        freed = 0
        for image_id in orphans:
            freed += await asyncio.to_thread(self.dir.remove, image_id)
        settled = now() - _SETTLING
        for image_id, entry in entries.items():
            if image_id not in files and entry.last_modified < settled:
                await self._forget_local(node, image_id, remove=False)
        return Removed(removed.files + len(orphans), removed.size + freed)

    async def catch_up(
        self, image_id: str | None, load: Loader, stopping: asyncio.Event | None = None
    ) -> None:
        """What another node's notice (an image deleted or deactivated there) asks: its part of
        the maintenance pass, now. Remove this node's files without rows and fill what is queued
        for it, of one image or of all (after a reconnection, when notices may have been lost)."""
        node = await self.node_id()
        completed = {} if image_id is None else {image_id: self.flights.completed(image_id)}
        files = [image_id] if image_id is not None else await asyncio.to_thread(self.dir.cached_ids)
        completed |= {i: self.flights.completed(i) for i in files if i not in completed}
        async with self.db.read() as session:
            repo = CacheRepository(session)
            held = {e.image_id for e in await repo.entries(node)}
            queued = await repo.queued(node)
        for file_id in files:
            # A fill of this process that ended meanwhile may have recorded its row since.
            if file_id in held or self.flights.completed(file_id) != completed[file_id]:
                continue
            with contextlib.suppress(ValueError):
                await asyncio.to_thread(self.dir.remove, file_id)
        for queued_id in queued:
            if stopping is not None and stopping.is_set():
                break
            if image_id not in (None, queued_id):
                continue
            # Every process of this node hears the notice; one fetches.
            with self.dir.claim(queued_id) as claimed:
                if claimed:
                    await self.prefetch(queued_id, load)

    async def maintain(self, load: Loader, stopping: asyncio.Event | None = None) -> None:
        """One scheduled pass: clean, prefetch what is queued, prune."""
        await self.clean()
        await self.prefetch_queued(load, stopping)
        await self.prune()

    async def aclose(self) -> None:
        await self.flights.aclose()
        await self.notices.aclose()


def _matches(entry: CachedEntry, image: Image, size: int) -> bool:
    return (
        size == image.size
        and entry.size == image.size
        and (entry.checksum is None or image.checksum is None or entry.checksum == image.checksum)
    )
