"""Format inspection of the staged file, the last step of preparation: the checks an upload
gets (glimpse.formats), applied to what the plugins left."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from glimpse.formats import inspect_file, inspected_container
from glimpse_worker.pipelines.sources import ImportJob, staged_path

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared


async def inspect_staged(job: ImportJob, prepared: Prepared) -> None:
    """Refuse staged data that is unsafe or (per [image_format]) not `prepared.disk_format`,
    raising InvalidImageData; record its virtual size on `prepared`."""
    if not inspected_container(prepared.container_format):
        return
    # The whole file is read (a VMDK keeps a footer at its end): a thread keeps the loop free.
    inspection = await anyio.to_thread.run_sync(inspect_file, staged_path(job.staged))
    options = job.ctx.settings.image_format
    prepared.virtual_size = inspection.check(
        prepared.disk_format,
        options.require_image_format_match,
        options.gpt_safety_checks_nonfatal,
    )
