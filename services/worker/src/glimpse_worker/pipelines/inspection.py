"""The last step of preparation: the staged data on its way to the stores is hashed (md5 and
the multihash, within image_size_cap) and inspected (the checks an upload gets,
glimpse.formats), so a large image is read once, by the pass that writes it, not once per
check and once more per store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio

from glimpse.formats import StreamInspector, inspected_container
from glimpse.limits import capped
from glimpse.services import signatures
from glimpse.stores.metering import Meter
from glimpse_worker.pipelines.sources import ImportJob

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared


async def surveyed(
    job: ImportJob, prepared: Prepared, verification: signatures.Verification | None = None
) -> AsyncIterator[bytes]:
    """The staged data, hashed and inspected as it passes. Once it has all passed,
    `prepared.meter` holds its size and hashes and `prepared.virtual_size` what inspection
    found; data that is unsafe or (per [image_format]) not `prepared.disk_format` raises
    InvalidImageData then, before this ends. The data's digest feeds `verification` too,
    when the image is signed (the caller checks the result); a certificate it refused stops
    the pass."""
    settings = job.runtime.settings
    cap = settings.image_size_cap
    algo = settings.hashing_algorithm
    meter = Meter(algo) if verification is None else verification.meter(algo)
    inspector = StreamInspector() if inspected_container(prepared.container_format) else None
    blocks = capped(job.runtime.stores.work.get(job.staged), meter, cap)
    if verification is not None:
        blocks = verification.guard(blocks)
    async for block in blocks:
        if inspector is not None:
            # The inspectors are pure Python: a thread keeps the loop (and the hashing) going.
            await anyio.to_thread.run_sync(inspector.feed, block)
        await job.progress.beat(report=False)  # a pass over a huge image keeps the lease
        yield block
    if inspector is not None:
        options = settings.image_format
        prepared.virtual_size = inspector.result().check(
            prepared.disk_format,
            options.require_image_format_match,
            options.gpt_safety_checks_nonfatal,
        )
    prepared.meter = meter
