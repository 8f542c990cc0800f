"""`no_op`: does nothing but say so; shows that the plugin chain runs."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared
    from glimpse_worker.pipelines.sources import ImportJob

log = logging.getLogger(__name__)


async def no_op(job: ImportJob, prepared: Prepared) -> None:  # noqa: ARG001 -- the interface
    log.info("import task %s: no_op import plugin ran", job.task.id)
