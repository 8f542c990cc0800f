"""copy-image's source: the image's own data, read from the stores that hold it already;
written straight to the target store when there is one (no staged copy), else staged once for
the targets to read.

Locations are tried in read order (store weight, as downloads read them); a store that fails,
or whose data does not match the image's recorded size and hash, is skipped for the next. The
data is checked while it streams, its last block held back until it matched, so a mismatch
never completes an object in a store (or the staged file).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from glimpse.db.repositories.images import ImageRepository
from glimpse.db.tables import Image
from glimpse.stores.base import StoreError
from glimpse.stores.metering import Meter, metered
from glimpse_worker.pipelines.guarded import SourceFailed
from glimpse_worker.pipelines.progress import Progress
from glimpse_worker.runtime import WorkerRuntime

log = logging.getLogger(__name__)


class CopySourceUnavailable(Exception):
    """No store holding the image gave back its data intact."""


class DataMismatch(StoreError):
    """A store gave back data whose hash differs from the image's."""


async def from_existing(
    runtime: WorkerRuntime, image: Image, write: Callable[[AsyncIterator[bytes]], Awaitable[None]]
) -> None:
    """Run `write` over the image's data from the first location that gives it back intact;
    a location whose data fails (SourceFailed: unreadable, or not the image's) is given up for
    the next."""
    async with runtime.database.read() as session:
        locations = (await ImageRepository(session).record(image)).locations
    problems = []
    for location in runtime.stores.by_weight(locations):
        store = runtime.stores.get(location.store_id or runtime.stores.default_id)
        if store is None:
            problems.append(f"{location.store_id}: not enabled")
            continue
        try:
            await write(_verified(store.get(location.value), image))
        except SourceFailed as exc:
            log.warning("copy of %s: location in %s unusable: %s", image.id, store.name, exc)
            problems.append(f"{store.name}: {exc}")
            continue
        return
    detail = "; ".join(problems) or "the image has no locations"
    msg = f"Image {image.id} data could not be read from any store ({detail})"
    raise CopySourceUnavailable(msg)


async def stage_existing(runtime: WorkerRuntime, image: Image, progress: Progress) -> None:
    """Copy the image's data from the first readable location into its staged file."""

    async def stage(data: AsyncIterator[bytes]) -> None:
        try:
            await runtime.stores.work.put(image.id, progress.count(data))
        except Exception as exc:
            progress.done = 0
            raise SourceFailed(exc) from exc

    await from_existing(runtime, image, stage)


async def _verified(chunks: AsyncIterator[bytes], image: Image) -> AsyncIterator[bytes]:
    """Pass the data through, failing (before the last block is let go) if its size or hash
    is not the image's."""
    algo = image.os_hash_algo or "sha512"
    meter = Meter(algo)
    held: bytes | None = None
    async for block in metered(
        chunks, meter, limit=None, on_limit=_never, expected_size=image.size
    ):
        if held is not None:
            yield held
        held = block
    wanted = image.os_hash_value if image.os_hash_algo else None
    if (wanted and meter.hash_value != wanted) or (
        image.checksum and meter.checksum != image.checksum
    ):
        msg = f"data does not match image {image.id}'s hash"
        raise DataMismatch(msg)
    if held is not None:
        yield held


def _never() -> Exception:  # metered wants a limit error; with no limit it is never built
    return AssertionError("no size limit is set")
