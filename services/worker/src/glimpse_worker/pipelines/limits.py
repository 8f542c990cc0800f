"""Keystone's unified limits at the start of an import job, as Glance's import flow checks
them once the image is marked as importing: glance-direct adds the staged size to
image_size_total; web-download, glance-download and copy-image stage their data, so they add
the image's size to image_stage_total and must stay within image_count_uploading. A job over
a limit fails with the limit's message, and its image goes back as Glance's revert leaves it
(see import_._fail). A no-op without use_keystone_limits."""

from __future__ import annotations

from glimpse import unified_limits
from glimpse.db.tables import Image, Task
from glimpse.domain.tasks import GLANCE_DIRECT
from glimpse_worker.runtime import WorkerRuntime


async def check_import(runtime: WorkerRuntime, task: Task, image: Image, method: str) -> None:
    """LimitExceeded if the import would take the task's project past a limit;
    LimitsUnavailable if Keystone does not give them."""
    limits = await unified_limits.read_limits(runtime.settings, task.owner)
    if limits is None:
        return
    size = unified_limits.mib_of(image.size)
    if method == GLANCE_DIRECT:
        deltas = {unified_limits.IMAGE_SIZE_TOTAL: size}
    else:
        deltas = {unified_limits.IMAGE_STAGE_TOTAL: size, unified_limits.IMAGE_COUNT_UPLOADING: 0}
    async with runtime.database.write() as session:
        await unified_limits.check_in(session, task.owner, limits, deltas, besides=image.id)
