"""Between staging and the stores: the import plugins, then format inspection.

Both work on the staged file in place, so a job that is retried prepares the staged data
again; every plugin must leave data it has already processed as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from glimpse_worker.pipelines.sources import ImportJob, staged_path
from glimpse_worker.plugins import run_plugins


@dataclass(slots=True)
class Prepared:
    """What preparation learned or changed about the image; applied when it goes active."""

    disk_format: str | None
    container_format: str | None
    virtual_size: int | None = None
    properties: dict[str, str | None] = field(default_factory=dict)

    def image_values(self) -> dict[str, Any]:
        return {
            "disk_format": self.disk_format,
            "container_format": self.container_format,
            "virtual_size": self.virtual_size,
        }


async def prepare(job: ImportJob) -> Prepared:
    """Run the enabled plugins over the staged file, then inspect what they left."""
    path = anyio.Path(staged_path(job.staged))
    prepared = Prepared(job.image.disk_format, job.image.container_format)
    await run_plugins(job, prepared)
    if prepared.disk_format == "raw" and prepared.container_format == "bare":
        # A raw disk's virtual size is its size.
        prepared.virtual_size = (await path.stat()).st_size
    return prepared
