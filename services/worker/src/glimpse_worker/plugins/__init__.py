"""Import plugins: steps run, in the configured order, on an import's staged data.

`[image_import_opts] image_import_plugins` names them (Glance's names); each is an entry point
of the `glimpse.import_plugins` group (services/worker/pyproject.toml), so another package can
add one. A plugin is an async callable `(job, prepared) -> None` that may rewrite the staged
file (whole, by atomic replace) and records what it changed on `prepared`.

A retried job runs every plugin again on data it may already have processed, so a plugin must
leave such data as it is. Plugins stream: the staged image is never held in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol

from glimpse.config import ConfigError

if TYPE_CHECKING:
    from glimpse_worker.pipelines.prepare import Prepared
    from glimpse_worker.pipelines.sources import ImportJob

GROUP = "glimpse.import_plugins"

log = logging.getLogger(__name__)


class ImportPlugin(Protocol):
    async def __call__(self, job: ImportJob, prepared: Prepared, /) -> None:
        """Process the staged file of `job`; record changes to the image on `prepared`."""


class PluginFailed(Exception):
    """The plugin refuses the image or could not process it; the message becomes the task's."""


def load(names: Sequence[str]) -> list[tuple[str, ImportPlugin]]:
    """The named plugins, in order; ConfigError names any that is not installed."""
    if not names:
        return []  # the usual case: no scan of every installed package's entry points
    available = {entry.name: entry for entry in entry_points(group=GROUP)}
    unknown = [name for name in names if name not in available]
    if unknown:
        msg = (
            f"[image_import_opts] image_import_plugins: unknown plugins {unknown} "
            f"(available: {sorted(available)})"
        )
        raise ConfigError(msg)
    return [(name, available[name].load()) for name in names]


async def run_plugins(job: ImportJob, prepared: Prepared) -> None:
    """Run the configured plugins over the job's staged file."""
    for name, plugin in load(job.runtime.settings.image_import_opts.image_import_plugins):
        log.info("import task %s: running plugin %s", job.task.id, name)
        await plugin(job, prepared)
