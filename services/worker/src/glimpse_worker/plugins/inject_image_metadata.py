"""`inject_image_metadata`: the operator's properties on every image imported by a user
without one of the ignored roles (by default, imports by admins are left alone)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from glimpse.config.reserved import RESERVED_PREFIX

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared
    from glimpse_worker.pipelines.sources import ImportJob

log = logging.getLogger(__name__)


async def inject_image_metadata(job: ImportJob, prepared: Prepared) -> None:
    options = job.runtime.settings.inject_metadata_properties
    roles = job.task.input.get("user_roles")
    user_roles = {str(role) for role in roles} if isinstance(roles, list) else set()
    if user_roles & set(options.ignore_user_roles):
        log.info("import task %s: user's roles exempt it from injected metadata", job.task.id)
        return
    for key, value in options.inject.items():
        # The service's own properties cannot be set this way (as in Glance).
        if key.startswith(RESERVED_PREFIX):
            log.warning("import task %s: not injecting reserved property %s", job.task.id, key)
            continue
        prepared.properties[key] = value
