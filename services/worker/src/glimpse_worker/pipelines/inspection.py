"""The last step of preparation: one pass over the staged file that hashes it (md5 and the
multihash, within image_size_cap) and inspects it (the checks an upload gets, glimpse.formats),
so a large image is read once before the stores are written, not once per check."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from glimpse.formats import StreamInspector, inspected_container
from glimpse.limits import capped
from glimpse.services import signatures
from glimpse.stores.metering import Meter
from glimpse_worker.pipelines.sources import ImportJob

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared


async def survey_staged(
    job: ImportJob, prepared: Prepared, verification: signatures.Verification | None = None
) -> Meter:
    """Hash the staged data and refuse it if it is unsafe or (per [image_format]) not
    `prepared.disk_format` (InvalidImageData); record its virtual size on `prepared`. The
    data's digest feeds `verification` too, when the image is signed (the caller checks the
    result); a certificate it refused stops the pass."""
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
            # asyncio's own: anyio's would be imported by the first import of each job process,
            # a tenth of a second or more that the first import waited for.
            await asyncio.to_thread(inspector.feed, block)
        await job.progress.beat(report=False)  # a pass over a huge image keeps the lease
    if inspector is not None:
        options = settings.image_format
        prepared.virtual_size = inspector.result().check(
            prepared.disk_format,
            options.require_image_format_match,
            options.gpt_safety_checks_nonfatal,
        )
    return meter
